"""Using a trained language model: score sentences, generate text, rerank candidates.

    import rnnkit
    m = rnnkit.load("runs/quickstart/shakespeare-lstm")
    m.score(["to be or not to be .", "be to not or be to ."])   # log-probabilities, perplexities
    m.generate(n=3, seed=1)                                        # the seed's sampler, batched
    m.rerank([["he go home .", "he goes home ."]])                 # the likeliest of each group

Text is tokenized the way the model's corpus was (lower-cased, Treebank tokens, …); a word-level
sentence is wrapped in SENTENCE_START … SENTENCE_END and every word and the end are predicted.
Scoring runs in batches of sentences sorted by length, one forward pass per batch; generation
samples a whole batch of sentences at once, carrying each one's state from step to step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import Batch, evaluation_batches, make_batch, stream_tokens
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles, load_model, update_info
from rnnkit.lm import cache as neural_cache
from rnnkit.lm import dynamic as dynamic_evaluation
from rnnkit.lm.cache import Cache, CachedRunner, CacheStream
from rnnkit.lm.dynamic import Dynamic, adapted_observations, stream_segments
from rnnkit.lm.evaluate import observations, perplexity, resolve_mode, split_loss
from rnnkit.lm.generate import Sampling, sample
from rnnkit.models.engine import open_engine
from rnnkit.options import argument, build, shown_python, texts_argument


@dataclass
class Score:
    text: str
    logprob: float  # natural log of the probability of the sentence (its tokens and its end)
    tokens: int  # predicted tokens
    token_probs: list[tuple[str, float]] | None = None

    @property
    def perplexity(self) -> float:
        return math.exp(-self.logprob / self.tokens) if self.tokens else math.nan

    def as_dict(self) -> dict[str, Any]:
        result = {"text": self.text, "logprob": self.logprob, "tokens": self.tokens, "perplexity": self.perplexity}
        if self.token_probs is not None:
            result["token_probs"] = [{"token": t, "prob": p} for t, p in self.token_probs]
        return result


def summarize(scores: Sequence[Score]) -> dict[str, Any]:
    """The scores of many sentences together: total log-probability and tokens, and the perplexity
    exp(−total log-probability / total tokens)."""
    logprob, tokens = sum(s.logprob for s in scores), sum(s.tokens for s in scores)
    return {"perplexity": math.exp(-logprob / tokens) if tokens else math.nan, "logprob": logprob, "tokens": tokens,
            "sentences": len(scores)}


class LanguageModel:
    """A trained model, ready to use. Make one with ``rnnkit.load(path)``."""

    def __init__(self, files: ModelFiles, *, engine: str = "auto", device: str = "auto") -> None:
        self.files, self.config, self.text, self.vocab = files, files.config, files.text, files.vocab
        self.engine = open_engine(files.config, files.params, engine=engine, device=device)
        tokens = files.tokens
        if self.level == "word":
            self.start_id = self.vocab.index.get(tokens.get("sentence_start") or "")
            self.end_id = self.vocab.index.get(tokens.get("sentence_end") or "")
            if self.start_id is None or self.end_id is None:
                raise RnnkitError(f"{files.path}: the vocabulary lacks the sentence markers")
            if tokens.get("sentence_follows") == "sentence_end":  # trained on a stream of sentences
                self.start_id = self.end_id
        else:  # characters: a line is scored after a newline and ends with one
            self.start_id = self.end_id = self.vocab.index.get("\n", self.vocab.unk_id)
        where, cache, dynamic = f"{files.path}/config.json", files.info.get("cache"), files.info.get("dynamic")
        # The neural cache scoring, generation and evaluation use: the fitted one, until set otherwise (None: off).
        self.cache: Cache | None = None if cache is None else Cache.from_dict(cache, where)
        # Dynamic evaluation's settings, when fitted: used on request (``dynamic=True``).
        self.dynamic: Dynamic | None = None if dynamic is None else Dynamic.from_dict(dynamic, where)

    @property
    def level(self) -> str:
        return self.text.level

    def __repr__(self) -> str:
        return (f"LanguageModel({str(self.files.path)!r}, {self.config.cell}, hidden {self.config.hidden}, "
                f"vocabulary {len(self.vocab):,}, {self.level} level, {self.engine.name} engine)")

    # ------------------------------------------------------------------ text ↔ ids

    def tokenize(self, text: str) -> list[str]:
        """Tokens of one sentence, as the model's corpus was tokenized."""
        return self.text.tokenize(text)

    def _ids(self, text: str, tokenized: bool) -> tuple[list[str], np.ndarray]:
        tokens = text.split() if tokenized else self.tokenize(text)
        return tokens, self.vocab.encode(tokens)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self.text.detokenize(tokens)

    # ------------------------------------------------------------------ scoring

    def score_ids(self, sentences: Sequence[np.ndarray], batch_size: int = 64,
                  documents: Sequence[Any] | None = None, dynamic: bool = False) -> list[np.ndarray]:
        """log P of each predicted token (the sentence's tokens, then its end) for id sequences.
        With a cache, the sentences are read in order as one text (``documents``: a key per
        sentence; the cache starts empty wherever the key changes). ``dynamic``: read them as one
        stream, the state carried, the model adapting as it reads (``rnnkit.lm.dynamic``)."""
        if dynamic:
            return self._score_adapting(sentences)
        order = np.argsort([len(s) for s in sentences], kind="stable")
        result: list[np.ndarray] = [np.zeros(0)] * len(sentences)
        states: list[np.ndarray] = [np.zeros(0)] * len(sentences)
        for a in range(0, len(order), batch_size):
            chosen = order[a:a + batch_size]
            batch = make_batch([sentences[i] for i in chosen], self.start_id, self.end_id)
            if self.cache is None:
                log_probs = self.engine.target_log_probs(batch.x, batch.y)
            else:
                log_probs, top, _ = self.engine.observe(batch.x, batch.y)
            for row, i in enumerate(chosen):
                result[i] = log_probs[row, : len(sentences[i]) + 1].astype(np.float64)
                if self.cache is not None:
                    states[i] = top[row, : len(sentences[i]) + 1]
        if self.cache is not None:
            self._mix_cache(sentences, result, states, documents)
        return result

    def _mix_cache(self, sentences: Sequence[np.ndarray], log_probs: list[np.ndarray], states: list[np.ndarray],
                   documents: Sequence[Any] | None) -> None:
        """Mix the cache into each sentence's log-probabilities, in place, reading the sentences in order."""
        stream, previous = None, object()
        for i, sentence in enumerate(sentences):
            key = None if documents is None else documents[i]
            if stream is None or key != previous:
                stream, previous = CacheStream(self.cache.window), key
            targets = np.append(np.asarray(sentence, dtype=np.int64), self.end_id)
            probs, has = stream.target_probs(states[i], targets, [self.cache.theta])
            log_probs[i] = neural_cache.mix(log_probs[i], probs[0], has, self.cache.lam)

    def _score_adapting(self, sentences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Dynamic evaluation's log-probabilities of each sentence (and the cache's, when there is one)."""
        settings = self._dynamic_settings()
        if self.start_id == self.end_id:  # a model of a stream: the sentences as one, each followed by its end
            batches = stream_segments(np.concatenate([[self.start_id], *[np.append(s, self.end_id)
                                                                          for s in sentences]]), settings.segment)
        else:  # a model of single sentences: each from a zero state, as it was trained
            batches = (make_batch([s], self.start_id, self.end_id) for s in sentences)
        stream, log_probs = CacheStream(self.cache.window) if self.cache else None, []
        for _, lp, states, targets in adapted_observations(self.engine, batches, settings, self.start_id == self.end_id):
            if stream is not None:
                probs, has = stream.target_probs(states, targets, [self.cache.theta])
                lp = neural_cache.mix(lp, probs[0], has, self.cache.lam)
            log_probs.append(np.asarray(lp, dtype=np.float64))
        ends = np.cumsum([len(s) + 1 for s in sentences])
        return np.split(np.concatenate(log_probs), ends[:-1]) if len(sentences) else []

    def _dynamic_settings(self) -> Dynamic:
        if self.dynamic is None:
            raise RnnkitError(f"{self.files.path} has no fitted dynamic evaluation; fit it first: rnnkit fit-dynamic "
                              f"{self.files.path} PREPARED")
        return self.dynamic

    def score(self, sentences: Iterable[str], *, per_token: bool = False, tokenized: bool = False,
              documents: Sequence[Any] | None = None, dynamic: bool = False) -> list[Score]:
        """Each sentence's log-probability, predicted-token count and perplexity. With a cache
        (``self.cache``), the sentences are one text read in order; with ``dynamic``, one stream
        the model adapts to as it reads (see ``score_ids``)."""
        texts = texts_argument("sentences", sentences)
        per_token, tokenized, dynamic = (argument(name, value, bool) for name, value in
                                         (("per_token", per_token), ("tokenized", tokenized), ("dynamic", dynamic)))
        tokenized_texts = [self._ids(t, tokenized) for t in texts]
        log_probs = self.score_ids([ids for _, ids in tokenized_texts], documents=documents, dynamic=dynamic)
        scores = []
        for text, (tokens, ids), lp in zip(texts, tokenized_texts, log_probs):
            probs = None
            if per_token:
                shown = [self.vocab.tokens[i] for i in ids] + [self.vocab.tokens[self.end_id]]
                probs = [(t, float(math.exp(p))) for t, p in zip(shown, lp)]
            scores.append(Score(text, float(lp.sum()), len(lp), probs))
        return scores

    def perplexity(self, texts: Iterable[str], *, tokenized: bool = False) -> float:
        """The perplexity of all the texts together: exp(−total log-probability / total tokens)."""
        return summarize(self.score(texts, tokenized=tokenized))["perplexity"]

    def next_token_probs(self, prefix: str = "", *, tokenized: bool = False) -> np.ndarray:
        """P(next token | SENTENCE_START + prefix) over the whole vocabulary."""
        if not isinstance(prefix, str):
            raise RnnkitError(f"prefix= must be a text (a str); got {shown_python(prefix)}")
        tokenized = argument("tokenized", tokenized, bool)
        _, ids = self._ids(prefix, tokenized) if prefix else ([], np.zeros(0, dtype=np.int64))
        h = self.engine.initial_state(1)
        probs = None
        for token in [self.start_id, *ids]:
            probs, h = self.engine.step(np.array([token]), h)
        return probs[0]

    def rerank(self, groups: Iterable[Sequence[str]], *, length_norm: bool = False) -> list[dict[str, Any]]:
        """For each group of candidates, the best by log-probability (per token with ``length_norm``)."""
        if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
            raise RnnkitError(f"groups= must be a list of groups, each a list of candidate texts; got "
                              f"{shown_python(groups)}")
        groups = [texts_argument(f"groups[{i}]", g) for i, g in enumerate(groups)]
        length_norm = argument("length_norm", length_norm, bool)
        if not groups:
            raise RnnkitError("groups= holds no group; give at least one list of candidates")
        flat = self.score([c for g in groups for c in g])
        results, at = [], 0
        for group in groups:
            scored = flat[at:at + len(group)]
            at += len(group)
            keys = [s.logprob / s.tokens if length_norm else s.logprob for s in scored]
            best = int(np.argmax(keys))
            results.append({"best": group[best], "best_index": best,
                            "candidates": [{**s.as_dict(), "score": k} for s, k in zip(scored, keys)]})
        return results

    # ------------------------------------------------------------------ generation

    def generate(self, n: int = Sampling.n, *, min_length: int = Sampling.min_length,
                 max_length: int = Sampling.max_length, seed: int | None = Sampling.seed,
                 temperature: float = Sampling.temperature, top_k: int | None = Sampling.top_k,
                 top_p: float | None = Sampling.top_p, prime: str | None = Sampling.prime,
                 length: int = Sampling.length) -> list[dict[str, Any]]:
        """Sample ``n`` texts. Word level: sentences, by default as the seed does — from
        SENTENCE_START until SENTENCE_END, never the unknown token, at least ``min_length`` words.
        Character level: ``length`` characters after ``prime``. The same ``seed``, the same text.
        Each option is checked as its flag is (``rnnkit.lm.generate.Sampling``)."""
        build(Sampling, dict(n=n, min_length=min_length, max_length=max_length, seed=seed, temperature=temperature,
                             top_k=top_k, top_p=top_p, prime=prime, length=length), "generate()")
        rng = np.random.default_rng(seed)
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, rng=rng)
        runner = self.engine if self.cache is None else CachedRunner(self.engine, self.cache, len(self.vocab))
        marker = self.vocab.index.get(self.files.tokens.get("sentence_start") or "")  # never a sentence's word
        banned = [self.vocab.unk_id] + ([marker] if self.level == "word" and marker != self.end_id else [])
        if self.files.tokens.get("mask_token") in self.vocab.index:  # the tutorial GRU's padding token
            banned.append(self.vocab.index[self.files.tokens["mask_token"]])
        if self.level == "char":
            prefix = list(prime if prime is not None else "\n")
            ids = np.array([self.vocab.id(c) for c in prefix], dtype=np.int64)
            out = sample(runner, np.repeat(ids[None], n, 0), steps=length, stop=None, banned=banned, **options)
            return [{"text": "".join(prefix) + "".join(self.vocab.decode(row)),
                     "tokens": prefix + self.vocab.decode(row)} for row in out]
        prefix_tokens, prefix_ids = self._ids(prime, False) if prime else ([], np.zeros(0, dtype=np.int64))
        if min_length > len(prefix_tokens) + max_length:
            raise RnnkitError(f"no sentence of at most {max_length} tokens after the prime can be {min_length} long: "
                              "lower --min-length (min_length=) or raise --max-length (max_length=)")
        start = np.concatenate([[self.start_id], prefix_ids]).astype(np.int64)
        results: list[dict[str, Any]] = []
        for round_ in range(100):  # draw until n sentences are long enough (the seed redraws short ones)
            wanted = (n - len(results)) * (1 if round_ == 0 else 2)  # the few still missing: twice as many
            rows = sample(runner, np.repeat(start[None], wanted, 0), steps=max_length, stop=self.end_id,
                          banned=banned, **options)
            for row in rows:
                tokens = prefix_tokens + self.vocab.decode(row)  # the prime as the user wrote it
                if len(tokens) >= min_length and len(results) < n:
                    results.append({"text": self.detokenize(tokens), "tokens": tokens})
            if len(results) == n:
                return results
        raise RnnkitError(f"could not draw {n} sentences of at least {min_length} words; lower --min-length")

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, corpus: PreparedCorpus | str | Path, *, split: str = "valid", mode: str = "auto",
                 dynamic: bool = False) -> dict[str, Any]:
        """Mean loss per predicted token, perplexity and token count on a prepared split; ``mode``
        auto evaluates as the model was trained (sentence or stream). With a cache, also the figure
        without it; with ``dynamic``, also dynamic evaluation's (the split read as one stream)."""
        corpus, mode = self._split(corpus, split, mode)
        result = {"split": split, "engine": self.engine.name, "mode": mode}
        if self.cache is None:
            loss, tokens = split_loss(self.engine, corpus, split, mode)
            result.update(loss=loss, perplexity=perplexity(loss), tokens=tokens)
        else:
            plain, loss, tokens = neural_cache.cached_loss(observations(self.engine, corpus, split, mode), self.cache)
            result.update(loss=loss, perplexity=perplexity(loss), tokens=tokens, cache=self.cache.to_dict(),
                          without_cache={"loss": plain, "perplexity": perplexity(plain)})
        if dynamic:
            settings = self._dynamic_settings()
            read = adapted_observations(self.engine, self._reading(corpus, split, mode, settings.segment)(), settings,
                                        carry=mode == "stream")
            if self.cache is None:
                loss, tokens = dynamic_evaluation.mean_loss(read)
                result["dynamic"] = {"loss": loss, "perplexity": perplexity(loss), "tokens": tokens}
            else:
                plain, loss, tokens = neural_cache.cached_loss(read, self.cache)
                result["dynamic"] = {"loss": loss, "perplexity": perplexity(loss), "tokens": tokens,
                                     "without_cache": {"loss": plain, "perplexity": perplexity(plain)}}
            result["dynamic"]["settings"] = settings.to_dict()
        return result

    def fit_dynamic(self, corpus: PreparedCorpus | str | Path, *, split: str = "valid",
                    segment: int = dynamic_evaluation.SEGMENT, save: bool = True) -> dynamic_evaluation.Fit:
        """Fit dynamic evaluation's learning rate and decay on a split (validation by default;
        its first ``FIT_TOKENS`` tokens), and (``save``) keep them in the model directory."""
        corpus, mode = self._split(corpus, split, "auto")
        fitted = dynamic_evaluation.fit(self.engine, self._reading(corpus, split, mode, segment), mode == "stream",
                                        segment=segment)
        self.dynamic = fitted.dynamic
        if save and self.files.path is not None:
            update_info(self.files.path, "dynamic", {**fitted.as_dict(), "split": split, "corpus": str(corpus.path)})
        return fitted

    def use_cache(self, window: int | None) -> None:
        """``window`` positions of the fitted cache (0: no cache; None: as fitted)."""
        if window is None:
            return
        if window < 0:
            raise RnnkitError(f"--cache must be 0 (off) or a window of positions, not {window}")
        if window and self.cache is None:
            raise RnnkitError(f"{self.files.path} has no fitted cache; fit one first: rnnkit fit-cache "
                              f"{self.files.path} PREPARED")
        self.cache = self.cache.resized(window) if window else None

    def fit_cache(self, corpus: PreparedCorpus | str | Path, *, split: str = "valid",
                  window: int = neural_cache.DEFAULT_WINDOW, mode: str = "auto",
                  save: bool = True) -> neural_cache.Fit:
        """Fit the neural cache's λ and θ on a split (validation by default), use it from now on,
        and (``save``) keep it in the model directory, where scoring, generation, evaluation and
        serving find it."""
        corpus, mode = self._split(corpus, split, mode)
        fitted = neural_cache.fit(observations(self.engine, corpus, split, mode), window)
        self.cache = fitted.cache
        if save and self.files.path is not None:
            update_info(self.files.path, "cache", {**fitted.as_dict(), "split": split, "corpus": str(corpus.path)})
        return fitted

    @staticmethod
    def _reading(corpus: PreparedCorpus, split: str, mode: str, segment: int) -> Callable[[], Iterable[Batch]]:
        """How dynamic evaluation reads a split, in order: the stream in segments, or one sentence at a time."""
        if mode == "stream":
            return lambda: stream_segments(stream_tokens(corpus, split), segment)
        return lambda: evaluation_batches(corpus, split, batch_size=1, in_order=True)

    def _split(self, corpus: PreparedCorpus | str | Path, split: str, mode: str) -> tuple[PreparedCorpus, str]:
        """The corpus, checked against the model's vocabulary and for the split, and the mode decided."""
        corpus = corpus if isinstance(corpus, PreparedCorpus) else PreparedCorpus.open(corpus)
        if self.vocab.tokens != corpus.vocab.tokens:
            raise RnnkitError(f"{self.files.path} was trained with another vocabulary than {corpus.path}'s; "
                              "evaluate on a corpus prepared the same way")
        corpus.check_split(split)
        mode = resolve_mode(self.files.info.get("training", {}).get("mode", "auto") if mode == "auto" else mode, corpus)
        return corpus, mode


def load(path: str | Path, *, engine: str = "auto", device: str = "auto", cache: int | None = None) -> LanguageModel:
    """Open a language model directory for scoring, generation and evaluation (``cache``: the
    window of its fitted neural cache; 0 turns the cache off; None: as fitted)."""
    model = LanguageModel(load_model(path, kind="lm"), engine=engine, device=device)
    model.use_cache(cache)
    return model


def evaluate_model(model_dir: str | Path, corpus: PreparedCorpus | str | Path, *, split: str = "valid",
                   engine: str = "auto", mode: str = "auto", device: str = "auto",
                   cache: int | None = None, dynamic: bool = False) -> dict[str, Any]:
    """Mean loss per predicted token, perplexity and token count of a trained model on a split."""
    model = load(model_dir, engine=engine, device=device, cache=cache)
    return model.evaluate(corpus, split=split, mode=mode, dynamic=dynamic)
