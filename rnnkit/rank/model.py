"""Trained rankers, ready to use: score (context, response) pairs, rank candidates.

    import rnnkit
    r = rnnkit.load_ranker("runs/ranker")
    r.score(["how now, my lord?"], ["well, i thank you."])      # one score per pair
    r.rank("how now, my lord?", ["well, i thank you.", "the fleet is lost."])

Scores are what the model compares: cᵀ M r for the dual encoder (σ of it is the probability
that r answers c, for a model trained with the binary objective), the TF-IDF cosine, BM25's
score, a hybrid's sum of a learned and a lexical score (less its prior: the response's score for
the average context, weighted), a reranker's matching head plus its first stage (a hybrid) in
proportion, or a random number. Encoding is batched,
rows sorted by length; ``rank_repository`` caches a repository's encodings next to the model,
keyed by the model's weights and the responses (and a lexical ranker its vectors, in memory).
"""

from __future__ import annotations

import copy
import hashlib
import io
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from tokenize import TokenError
from typing import Any

import numpy as np

from rnnkit.data.batching import pad_batch
from rnnkit.errors import RnnkitError
from rnnkit.fsutil import atomic_write_bytes
from rnnkit.io.modeldir import WEIGHTS, ModelFiles, load_model
from rnnkit.models.engine import open_engine
from rnnkit.options import argument, shown_python, text_argument, texts_argument
from rnnkit.rank.config import LEXICAL, RankerConfig
from rnnkit.rank.data import TextIds
from rnnkit.rank.engine import RankerEngine

_ENCODE_BATCH = 256


class Ranker:
    """What every ranker offers; a subclass defines ``score_pairs`` (and may speed up ``_scores``)."""

    def __init__(self, config: RankerConfig, ids: TextIds, path: Path | None = None) -> None:
        self.config, self.ids, self.path = config, ids, path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {self.config.model})"

    def score_pairs(self, contexts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def score(self, contexts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """One score per (context, response) pair; higher is better."""
        contexts, responses = texts_argument("contexts", contexts), texts_argument("responses", responses)
        if len(contexts) != len(responses):
            raise RnnkitError(f"give as many responses as contexts ({len(responses)} for {len(contexts)})")
        _check_texts([*contexts, *responses])
        return self.score_pairs(list(contexts), list(responses))

    def score_rows(self, contexts: Sequence[str], candidates: Sequence[Sequence[str]]) -> np.ndarray:
        """Scores (n, k): each context against its own k candidates."""
        k = len(candidates[0]) if candidates else 0
        flat = [c for row in candidates for c in row]
        return self.score_pairs([c for c in contexts for _ in range(k)], flat).reshape(len(contexts), k)

    def rank(self, context: str, candidates: Sequence[str]) -> list[dict[str, Any]]:
        """The candidates best first, each with its score."""
        context = text_argument("context", context)
        candidates = texts_argument("candidates", candidates, 2, "candidates to rank")
        _check_texts(candidates)
        scores = self.score_rows([context], [list(candidates)])[0]
        return _best_first(candidates, scores)

    def rank_repository(self, context: str, responses: Sequence[str], top: int = 10) -> list[dict[str, Any]]:
        """The ``top`` best of a repository of responses (a dual encoder caches their encodings)."""
        context, top = repository_arguments(context, responses, top)
        scores = self.score_one(context, responses)
        best = best_indices(scores, top)
        return _best_first([responses[i] for i in best], scores[best])

    def score_one(self, context: str, responses: Sequence[str]) -> np.ndarray:
        """The scores of many responses to one context."""
        return self.score_pairs([context] * len(responses), list(responses))


class DualEncoderRanker(Ranker):
    average: np.ndarray | None = None  # a hybrid's prior: λ times the average context's encoding, taken from each

    def __init__(self, config: RankerConfig, ids: TextIds, engine: RankerEngine, path: Path | None = None) -> None:
        super().__init__(config, ids, path)
        self.engine = engine

    def _encode(self, rows: list[np.ndarray], bar: bool = False) -> np.ndarray:
        """Encodings (n, D) of id rows, in batches of similar length (``bar``: a progress bar on a terminal)."""
        from tqdm import tqdm

        order = np.argsort([len(r) for r in rows], kind="stable")
        out = np.empty((len(rows), self.config.width), dtype=self.config.dtype)
        with tqdm(total=len(rows), unit=" responses", leave=False, disable=not (bar and sys.stderr.isatty())) as shown:
            for a in range(0, len(rows), _ENCODE_BATCH):
                chosen = order[a:a + _ENCODE_BATCH]
                out[chosen] = self.engine.encode(*pad_batch([rows[i] for i in chosen]))
                shown.update(len(chosen))
        return out

    def encode_contexts(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.ids.contexts(texts))

    def encode_responses(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.ids.responses(texts))

    def _queries(self, contexts: Sequence[str]) -> np.ndarray:
        """Context encodings as they are scored: less the prior's share of the average context's.
        Scores are linear in c, so cᵀMr − λ c̄ᵀMr is (c − λc̄)ᵀMr."""
        c = self.encode_contexts(contexts)
        return c if self.average is None else c - self.average.astype(c.dtype)

    def score_pairs(self, contexts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        (unique_c, which_c), (unique_r, which_r) = _distinct(contexts), _distinct(responses)
        c = self._queries(unique_c) @ self.engine.params()["M"]
        r = self.encode_responses(unique_r)
        return np.einsum("nd,nd->n", c[which_c], r[which_r])

    def score_one(self, context: str, responses: Sequence[str]) -> np.ndarray:
        """A repository of responses is encoded once and cached beside the model (invalidated when
        its weights or the responses change): a query then costs one context encoding and one
        matrix product."""
        encoded = _memo(self, responses, lambda: self.cached_responses(responses))  # in memory after the first
        return self.engine.score_matrix(self._queries([context]), encoded)[0]

    def cached_responses(self, responses: Sequence[str]) -> np.ndarray:
        """The encodings of a repository, from the cache beside the model when it has them. The
        cache is derived data: one that cannot be used (damaged, of another shape, not a plain file
        in a plain ``cache/`` directory of the model's own) is rebuilt, and never written outside
        the model directory."""
        responses = list(responses)
        cache = response_cache(self.path, responses) if self.path is not None else None
        cached = _cached_array(cache, (len(responses), self.config.width), self.config.dtype) if cache else None
        if cached is not None:
            return cached
        said = len(responses) >= SAY_FROM  # a wait worth a word: 100k responses take a minute or two on a CPU
        if said:
            print(f"rnnkit: encoding {len(responses):,} responses, once"
                  f"{f' (kept in {cache.parent})' if cache else ''}...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        encoded = self._encode(self.ids.responses(responses), bar=said)
        if cache is not None:
            _write_cache(cache, encoded)
        if said:
            print(f"rnnkit: encoded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return encoded


def response_cache(model: Path, responses: Sequence[str]) -> Path | None:
    """Where a repository's encodings are kept: ``MODEL/cache/responses-<digest>.npy``, the digest
    of the weights and the responses. A ``cache`` that is not a directory of the model's own (a
    file, a link) is put aside and made again, said once; where that cannot be done, None (the
    encodings are kept in memory only)."""
    digest = hashlib.sha256((model / WEIGHTS).read_bytes())
    digest.update("\n".join(responses).encode("utf-8"))
    directory = model / "cache"
    try:
        if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
            print(f"rnnkit: {directory} was not a directory of the model's own; made it again", file=sys.stderr)
            directory.unlink()
        directory.mkdir(exist_ok=True)
    except OSError as e:
        print(f"rnnkit: the response cache in {directory} cannot be used ({e.strerror}); the encodings stay in "
              "memory", file=sys.stderr)
        return None
    return directory / f"responses-{digest.hexdigest()[:20]}.npy"


class LexicalRanker(Ranker):
    """A score that is a context's query vector (its words, weighted) dotted with a response's
    document vector, both sparse over the vocabulary; a subclass says how each is weighted. A
    hybrid's prior takes ``average`` (λ times the average context's query) from every query."""

    average: np.ndarray | None = None

    def queries(self, texts: Sequence[str]):
        raise NotImplementedError

    def documents(self, texts: Sequence[str]):
        raise NotImplementedError

    def score_pairs(self, contexts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        (unique_c, which_c), (unique_r, which_r) = _distinct(contexts), _distinct(responses)
        documents = self.documents(unique_r)
        scores = np.asarray(self.queries(unique_c)[which_c].multiply(documents[which_r]).sum(axis=1)).ravel()
        return scores if self.average is None else scores - (documents @ self.average)[which_r]

    def score_one(self, context: str, responses: Sequence[str]) -> np.ndarray:
        documents = _memo(self, responses, lambda: self.documents(responses))
        query = self.queries([context]).toarray()[0]
        return np.asarray(documents @ (query if self.average is None else query - self.average)).ravel()


class TfidfRanker(LexicalRanker):
    """The cosine of TF-IDF vectors (scikit-learn's ``TfidfVectorizer`` over the ranker's tokens):
    a text's query and document vectors are the same unit vector."""

    def __init__(self, config: RankerConfig, ids: TextIds, idf: np.ndarray, path: Path | None = None) -> None:
        super().__init__(config, ids, path)
        self.vectorizer = tfidf_vectorizer(ids)
        self.vectorizer.idf_ = idf

    def queries(self, texts: Sequence[str]):
        return self.vectorizer.transform(self.ids.tokens(list(texts))).tocsr()

    documents = queries


class BM25Ranker(LexicalRanker):
    """Okapi BM25 of each response (the document) for its context's words (the query), with
    Lucene's idf and scoring, as ``bm25s`` computes them: Σ over the context's tokens t of
    idf(t) · tf / (tf + k1 · (1 − b + b · |response| / avgdl)). idf and avgdl come from the
    training texts; k1 and b are the usual 1.5 and 0.75."""

    K1, B = 1.5, 0.75

    def __init__(self, config: RankerConfig, ids: TextIds, idf: np.ndarray, avgdl: float,
                 path: Path | None = None) -> None:
        super().__init__(config, ids, path)
        self.vectorizer, self.idf, self.avgdl = count_vectorizer(ids), idf, avgdl

    @classmethod
    def fit(cls, config: RankerConfig, ids: TextIds, documents: list[list[str]]) -> BM25Ranker:
        """Its idf and mean length from the tokens of a collection of ``documents``."""
        counts = count_vectorizer(ids).transform(documents)
        n, df = counts.shape[0], np.bincount(counts.indices, minlength=counts.shape[1])
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        return cls(config, ids, idf, float(counts.sum()) / max(n, 1))

    def queries(self, texts: Sequence[str]):
        """Each text's word counts times their idf."""
        return self.vectorizer.transform(self.ids.tokens(list(texts))).multiply(self.idf).tocsr()

    def documents(self, texts: Sequence[str]):
        """Each text's tf / (tf + k1 · (1 − b + b · |text| / avgdl)), by word: what a query's words pick."""
        documents = self.vectorizer.transform(self.ids.tokens(list(texts))).tocsr().astype(np.float64)
        saturation = self.K1 * (1.0 - self.B + self.B * np.asarray(documents.sum(axis=1)).ravel() / self.avgdl)
        row_of = np.repeat(np.arange(documents.shape[0]), np.diff(documents.indptr))
        documents.data = documents.data / (documents.data + saturation[row_of])
        return documents


class HybridRanker(Ranker):
    """A dual encoder's score plus ``config.mix`` times a lexical ranker's (TF-IDF or BM25): the
    dense–sparse hybrid of passage retrieval, the learned score knowing what words mean and the
    lexical one which words the two texts share. With a ``config.prior``, less that much of the
    response's score for the average context (each part takes it from its own score)."""

    def __init__(self, config: RankerConfig, dual: DualEncoderRanker, lexical: LexicalRanker,
                 path: Path | None = None) -> None:
        super().__init__(config, dual.ids, path)
        self.dual, self.lexical, self.engine = dual, lexical, dual.engine

    def score_pairs(self, contexts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.dual.score_pairs(contexts, responses) + self.config.mix * self.lexical.score_pairs(contexts,
                                                                                                       responses)

    def score_one(self, context: str, responses: Sequence[str]) -> np.ndarray:
        learned = self.dual.score_one(context, responses)
        return learned + self.config.mix * self.lexical.score_one(context, responses) if self.config.mix else learned


class RerankingRanker(Ranker):
    """A hybrid (``first``) whose best candidates are read again, each together with the context,
    by the matching head (a cross-encoder): their score is the head's plus ``config.rerank_mix``
    times the hybrid's. Candidates given explicitly are all read again; in a repository, the
    hybrid's best ``config.rerank_top`` (or ``top``, if more)."""

    CHUNK = 32  # contexts read together: their states and their candidates' stay in memory
    PAIRS = 512  # pairs of context and candidate the head reads at once, however many candidates a context has

    def __init__(self, config: RankerConfig, first: HybridRanker, path: Path | None = None) -> None:
        super().__init__(config, first.ids, path)
        self.first, self.engine = first, first.engine

    def score_pairs(self, contexts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        head = self.match_rows(contexts, [[r] for r in responses])[:, 0]
        return head + self.config.rerank_mix * self.first.score_pairs(contexts, responses)

    def score_rows(self, contexts: Sequence[str], candidates: Sequence[Sequence[str]]) -> np.ndarray:
        head = self.match_rows(contexts, candidates)
        return head + self.config.rerank_mix * self.first.score_rows(contexts, candidates) if self.config.rerank_mix \
            else head

    def rank_repository(self, context: str, responses: Sequence[str], top: int = 10) -> list[dict[str, Any]]:
        context, top = repository_arguments(context, responses, top)
        first = self.first.score_one(context, responses)
        shortlist = best_indices(first, max(top, self.config.rerank_top))
        texts = [responses[i] for i in shortlist]
        scores = self.match_rows([context], [texts])[0] + self.config.rerank_mix * first[shortlist]
        return _best_first(texts, scores)[:top]

    def match_rows(self, contexts: Sequence[str], candidates: Sequence[Sequence[str]]) -> np.ndarray:
        """The head's scores (n, k): each context read with each of its k candidates."""
        k = len(candidates[0]) if candidates else 0
        out = np.empty((len(contexts), k))
        context_ids = self.ids.contexts(contexts)
        order = np.argsort([len(r) for r in context_ids], kind="stable")  # similar lengths pad little
        for a in range(0, len(order), self.CHUNK):
            chosen = order[a:a + self.CHUNK]
            x, x_mask = pad_batch([context_ids[i] for i in chosen])
            A = self.engine.encode_states(x, x_mask)[1]
            step = max(1, self.PAIRS // len(chosen))  # candidates read at once: the memory stays bounded
            for b in range(0, k, step):
                y, y_mask = pad_batch(self.ids.responses([r for i in chosen for r in candidates[i][b:b + step]]))
                width = min(step, k - b)
                pairs = np.repeat(np.arange(len(chosen)), width)
                B = self.engine.encode_states(y, y_mask)[1]
                scores = self.engine.match_scores(A[pairs], x_mask[pairs], B, y_mask)
                out[chosen, b:b + width] = scores.reshape(-1, width)
        return out


def fit_mix(dual: np.ndarray, lexical: np.ndarray) -> float:
    """The weight w of the lexical scores that ranks held-out rows best when added to the learned
    ones: ``dual`` and ``lexical`` are (n, k) scores, the true response first in each row. Chosen
    on a grid (0, and 1/64 to 64 times the ratio of the two scores' spreads) by R@1, then by the
    1-of-k loss."""
    spread = float(dual.std() / max(lexical.std(), 1e-12))
    return best_weight(dual, lexical, [0.0, *(spread * 2.0 ** e for e in np.arange(-6, 6.5, 0.5))])


def best_weight(scores: np.ndarray, extra: np.ndarray, grid: Sequence[float]) -> float:
    """The w of ``grid`` with which ``scores + w · extra`` ranks held-out rows best (each (n, k),
    the true response first in each row): by R@1, then by the 1-of-k loss."""

    def quality(w: float) -> tuple[float, float]:
        total = scores + w * extra
        log_z = np.logaddexp.reduce(total, axis=1)
        return float((total[:, 1:] < total[:, :1]).all(axis=1).mean()), -float((log_z - total[:, 0]).mean())

    return float(max(grid, key=quality))


class RandomRanker(Ranker):
    """Scores drawn at random: the floor any model must clear (R@k in 1-of-10 is k/10)."""

    def __init__(self, config: RankerConfig, ids: TextIds, seed: int = 0, path: Path | None = None) -> None:
        super().__init__(config, ids, path)
        self.rng = np.random.default_rng(seed)

    def score_pairs(self, contexts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.rng.random(len(contexts))


def tfidf_vectorizer(ids: TextIds):
    """A TfidfVectorizer over the ranker's vocabulary, fed tokens the pipeline made (unknown words
    count as the unknown token)."""
    return _vectorizer(ids, "TfidfVectorizer")


def count_vectorizer(ids: TextIds):
    """Token counts over the ranker's vocabulary, as ``tfidf_vectorizer`` reads tokens."""
    return _vectorizer(ids, "CountVectorizer")


def _vectorizer(ids: TextIds, name: str):
    try:
        from sklearn.feature_extraction import text
    except ImportError:
        raise RnnkitError("the lexical rankers need scikit-learn: pip install scikit-learn") from None
    vocab = ids.vocab
    return getattr(text, name)(vocabulary=vocab.index, lowercase=False,
                               analyzer=lambda tokens: [t if t in vocab.index else vocab.unk_token for t in tokens])


SAY_FROM = 2000  # responses encoded with a word of progress
CHECKSUM_BYTES = 16  # a cache file ends with the BLAKE2b digest of its array's bytes


def _write_cache(path: Path, array: np.ndarray) -> None:
    """``array`` as ``.npy`` followed by its checksum, written whole or not at all; in place of
    whatever ``path`` was (a directory, a link), never through it. Where it cannot be written, the
    encodings stay in memory, said once."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    buffer.write(_checksum(np.ascontiguousarray(array)))
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as e:
        print(f"rnnkit: the response cache {path} cannot be written ({e.strerror}); the encodings stay in memory",
              file=sys.stderr)


def _cached_array(path: Path, shape: tuple[int, ...], dtype: str) -> np.ndarray | None:
    """The array a cache file holds, if it is one of ours as it was written: a regular file, arrays
    only (never a pickle), of the expected shape and dtype (read from its header before anything
    is allocated, so that a header claiming 10¹² rows costs nothing), its checksum intact. Anything
    else: None (rebuild it)."""
    if not path.is_file() or path.is_symlink():
        return None
    expected = np.dtype(dtype)
    try:
        with open(path, "rb") as f:
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(f))
            if read is None:
                return None
            found, fortran, kind = read(f)  # the header alone
            size = int(np.prod(shape)) * expected.itemsize
            if found != shape or fortran or kind != expected or \
                    path.stat().st_size != f.tell() + size + CHECKSUM_BYTES:
                return None
            array = np.empty(shape, dtype=expected)  # writable (torch warns of a read-only one), read in place
            if f.readinto(memoryview(array).cast("B")) != size:
                return None
            checksum = f.read(CHECKSUM_BYTES)
    except (ValueError, OSError, EOFError, MemoryError, SyntaxError, TokenError):  # a damaged header
        return None
    return array if _checksum(array) == checksum else None


def _checksum(array: np.ndarray) -> bytes:
    """The digest a cache file ends with: of the (C-contiguous) array's bytes, read in place."""
    return hashlib.blake2b(memoryview(array).cast("B"), digest_size=CHECKSUM_BYTES).digest()


def repository_arguments(context: Any, responses: Any, top: Any) -> tuple[str, int]:
    """``rank_repository``'s arguments, checked: a context, a repository of texts (a tuple or a list,
    kept as it is: a dual encoder keeps its encodings for the same one), ``top`` at least 1."""
    if isinstance(responses, (str, bytes)) or not isinstance(responses, Sequence) or not len(responses):
        raise RnnkitError(f"responses= must be a list (or tuple) of at least one response; got "
                          f"{shown_python(responses)}")
    if responses is not _CHECKED[0]:  # a chat's repository (a tuple: it cannot change) is checked once
        _check_texts(texts_argument("responses", responses))
        _CHECKED[0] = responses if isinstance(responses, tuple) else None
    return text_argument("context", context), argument("top", top, int, "[1, )")


_CHECKED: list[Any] = [None]  # the last repository found sound, if a tuple


def _check_texts(texts: Sequence[str]) -> None:
    if any(not t.strip() for t in texts):
        raise RnnkitError("a context or response is empty; every one needs text")


def _memo(ranker: Ranker, responses: Sequence[str], make: Callable[[], Any]) -> Any:
    """What ``make`` computes for a repository, kept for the next query of the same repository.
    The same list object again (a chat's repository, query after query) is not hashed again: 1.6 ms
    for 100k responses, a twentieth of an answer. A tuple cannot change, so it is safe to trust."""
    if getattr(ranker, "_memo_source", None) is responses and isinstance(responses, tuple):
        return ranker._memo_value  # type: ignore[attr-defined]
    key = hash(tuple(responses))
    if getattr(ranker, "_memo_key", None) != key:
        ranker._memo_key, ranker._memo_value = key, make()  # type: ignore[attr-defined]
    ranker._memo_source = responses  # type: ignore[attr-defined]
    return ranker._memo_value  # type: ignore[attr-defined]


def _distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct texts, and where each of ``texts`` is among them: each is encoded once."""
    unique, which = np.unique(np.array(texts, dtype=object), return_inverse=True)
    return list(unique), which


def best_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` highest scores, best first (ties: the earlier first), without
    sorting the whole array: a repository holds ~100k responses, an answer needs a few."""
    if k < len(scores):
        top = np.argpartition(-scores, k - 1)[:k]
        kth = scores[top].min()
        top = np.flatnonzero(scores >= kth)  # every tie at the k-th score, so that the earliest win
    else:
        top = np.arange(len(scores))
    return top[np.argsort(-scores[top], kind="stable")][:k]


def _best_first(candidates: Sequence[str], scores: np.ndarray) -> list[dict[str, Any]]:
    order = np.argsort(-scores, kind="stable")
    return [{"text": candidates[i], "score": float(scores[i])} for i in order]


def ranker_from_files(files: ModelFiles, *, engine: str = "auto", device: str = "auto") -> Ranker:
    config: RankerConfig = files.config
    ids = TextIds(files.text, files.vocab, config.max_context, config.max_response)
    if config.model == "random":
        return RandomRanker(config, ids, files.info.get("training", {}).get("seed", 0), files.path)
    if config.model in LEXICAL:
        return lexical_ranker(config.model, config, ids, files.params, files.path)
    dual = DualEncoderRanker(config, ids, open_engine(config, files.params, engine=engine, device=device), files.path)
    if config.model in ("hybrid", "reranker"):
        hybrid = HybridRanker(config, dual, lexical_ranker(config.lexical, config, ids, files.params), files.path)
        if config.prior:
            hybrid = with_prior(hybrid, files.params["prior.context"], files.params["prior.query"])
        return RerankingRanker(config, hybrid, files.path) if config.reranks else hybrid
    return dual


def with_prior(hybrid: HybridRanker, context: np.ndarray, query: np.ndarray) -> HybridRanker:
    """``hybrid`` (its parts copied, not changed) scoring each pair less ``config.prior`` times the
    response's score for the average context: its encoding ``context``, its lexical ``query``."""
    dual, lexical = copy.copy(hybrid.dual), copy.copy(hybrid.lexical)
    dual.average, lexical.average = hybrid.config.prior * context, hybrid.config.prior * query
    return HybridRanker(hybrid.config, dual, lexical, hybrid.path)


def lexical_ranker(name: str, config: RankerConfig, ids: TextIds, params: dict[str, np.ndarray],
                   path: Path | None = None) -> LexicalRanker:
    """TF-IDF or BM25 from its fitted arrays (``idf``, and BM25's ``avgdl``)."""
    if name == "tfidf":
        return TfidfRanker(config, ids, params["idf"], path)
    return BM25Ranker(config, ids, params["idf"], float(params["avgdl"][0]), path)


def load_ranker(path: str | Path, *, engine: str = "auto", device: str = "auto") -> Ranker:
    """Open a ranker's model directory (``rnnkit rank train``)."""
    return ranker_from_files(load_model(path, kind="ranker"), engine=engine, device=device)
