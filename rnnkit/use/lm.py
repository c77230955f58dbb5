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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import make_batch
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles, load_model
from rnnkit.models.numpy import numpy_model
from rnnkit.models.numpy.threads import one_blas_thread
from rnnkit.text.tokenize import WordTokenizer
from rnnkit.use.generate import detokenize, sample


class _NumpyRunner:
    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.model = numpy_model({k: v.copy() for k, v in params.items()})

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return self.model.target_log_probs(x, y)

    def initial_state(self, batch: int):
        return self.model.initial_state(batch)

    def step(self, tokens: np.ndarray, h) -> tuple[np.ndarray, Any]:
        with one_blas_thread():
            return self.model.step(tokens, h)


class _TorchRunner:
    def __init__(self, params: dict[str, np.ndarray], device: str) -> None:
        import torch

        from rnnkit.models.torch.gated import torch_model

        self.torch = torch
        self.model = torch_model(params, device).eval()
        self.device = device

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            logits, _ = self.model(torch.from_numpy(x).to(self.device))
            picked = logits.gather(2, torch.from_numpy(y).to(self.device)[:, :, None])[:, :, 0]
            return (picked - torch.logsumexp(logits, dim=-1)).cpu().numpy()  # no full log-softmax written

    def initial_state(self, batch: int):
        return self.model.initial_state(batch)

    def step(self, tokens: np.ndarray, h) -> tuple[np.ndarray, Any]:
        torch = self.torch
        with torch.no_grad():
            logits, h = self.model(torch.from_numpy(tokens[:, None]).to(self.device), h)
            return torch.softmax(logits[:, 0], dim=-1).cpu().numpy(), h


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


class LanguageModel:
    """A trained model, ready to use. Make one with ``rnnkit.load(path)``."""

    def __init__(self, files: ModelFiles, *, engine: str = "auto", device: str = "auto") -> None:
        self.files = files
        self.config = files.config
        self.vocab = files.vocab
        self.level = self.config.get("level", "word")
        numpy_only = self.config["cell"] == "tutorial-gru"
        if engine == "auto":
            try:
                import torch  # noqa: F401

                engine = "numpy" if numpy_only else "torch"
            except ImportError:
                engine = "numpy"
        if engine == "torch" and numpy_only:
            raise RnnkitError("the tutorial's GRU runs on the numpy engine only; use --engine numpy (or auto)")
        if engine == "numpy":
            self.runner = _NumpyRunner(files.params)
        elif engine == "torch":
            import torch

            device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
            self.runner = _TorchRunner(files.params, device)
        else:
            raise RnnkitError(f"unknown engine {engine!r}; use numpy or torch")
        self.engine = engine
        index = self.vocab.index
        if self.level == "word":
            self.start_id = index.get(self.config.get("sentence_start") or "")
            self.end_id = index.get(self.config.get("sentence_end") or "")
            if self.start_id is None or self.end_id is None:
                raise RnnkitError(f"{files.path}: the vocabulary lacks the sentence markers")
            if self.config.get("sentence_follows") == "sentence_end":  # trained on a stream of sentences
                self.start_id = self.end_id
            self._words = WordTokenizer(self.config.get("tokenizer") or "treebank")
        else:  # characters: a line is scored after a newline and ends with one
            self.start_id = self.end_id = index.get("\n", self.vocab.unk_id)

    def __repr__(self) -> str:
        return (f"LanguageModel({str(self.files.path)!r}, {self.config['cell']}, hidden {self.config['hidden']}, "
                f"vocabulary {len(self.vocab):,}, {self.level} level, {self.engine} engine)")

    # ------------------------------------------------------------------ text ↔ ids

    def tokenize(self, text: str) -> list[str]:
        """Tokens of one sentence, as the model's corpus was tokenized."""
        if self.config.get("lowercase"):
            text = text.lower()
        return list(text) if self.level == "char" else self._words.tokenize(text)

    def _ids(self, text: str, tokenized: bool) -> tuple[list[str], np.ndarray]:
        tokens = text.split() if tokenized else self.tokenize(text)
        return tokens, np.array([self.vocab.id(t) for t in tokens], dtype=np.int64)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens) if self.level == "char" else detokenize(tokens)

    # ------------------------------------------------------------------ scoring

    def score_ids(self, sentences: Sequence[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
        """log P of each predicted token (the sentence's tokens, then its end) for id sequences."""
        order = np.argsort([len(s) for s in sentences], kind="stable")
        result: list[np.ndarray] = [np.zeros(0)] * len(sentences)
        for a in range(0, len(order), batch_size):
            chosen = order[a:a + batch_size]
            batch = make_batch([sentences[i] for i in chosen], self.start_id, self.end_id)
            log_probs = self.runner.target_log_probs(batch.x, batch.y)
            for row, i in enumerate(chosen):
                result[i] = log_probs[row, : len(sentences[i]) + 1].astype(np.float64)
        return result

    def score(self, sentences: Iterable[str], *, per_token: bool = False, tokenized: bool = False) -> list[Score]:
        """Each sentence's log-probability, predicted-token count and perplexity."""
        texts = list(sentences)
        tokenized_texts = [self._ids(t, tokenized) for t in texts]
        log_probs = self.score_ids([ids for _, ids in tokenized_texts])
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
        scores = self.score(texts, tokenized=tokenized)
        tokens = sum(s.tokens for s in scores)
        return math.exp(-sum(s.logprob for s in scores) / tokens) if tokens else math.nan

    def next_token_probs(self, prefix: str = "", *, tokenized: bool = False) -> np.ndarray:
        """P(next token | SENTENCE_START + prefix) over the whole vocabulary."""
        _, ids = self._ids(prefix, tokenized) if prefix else ([], np.zeros(0, dtype=np.int64))
        h = self.runner.initial_state(1)
        probs = None
        for token in [self.start_id, *ids]:
            probs, h = self.runner.step(np.array([token]), h)
        return probs[0]

    def rerank(self, groups: Iterable[Sequence[str]], *, length_norm: bool = False) -> list[dict[str, Any]]:
        """For each group of candidates, the best by log-probability (per token with ``length_norm``)."""
        groups = [list(g) for g in groups]
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

    def generate(self, n: int = 10, *, min_length: int = 7, max_length: int = 100, seed: int | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 prime: str | None = None, length: int = 200) -> list[dict[str, Any]]:
        """Sample ``n`` texts. Word level: sentences, by default as the seed does — from
        SENTENCE_START until SENTENCE_END, never the unknown token, at least ``min_length`` words.
        Character level: ``length`` characters after ``prime``. The same ``seed``, the same text."""
        if n < 1 or temperature <= 0 or (top_k is not None and top_k < 1) or (top_p is not None and not 0 < top_p <= 1):
            raise RnnkitError("-n must be at least 1, --temperature above 0, --top-k at least 1, --top-p in (0, 1]")
        rng = np.random.default_rng(seed)
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, rng=rng)
        marker = self.vocab.index.get(self.config.get("sentence_start") or "")  # never a sentence's word
        banned = [self.vocab.unk_id] + ([marker] if self.level == "word" and marker != self.end_id else [])
        if self.config.get("mask_token") in self.vocab.index:  # the tutorial GRU's padding token
            banned.append(self.vocab.index[self.config["mask_token"]])
        if self.level == "char":
            prefix = list(prime if prime is not None else "\n")
            ids = np.array([self.vocab.id(c) for c in prefix], dtype=np.int64)
            out = sample(self.runner, np.repeat(ids[None], n, 0), steps=length, stop=None, banned=banned, **options)
            return [{"text": "".join(prefix) + "".join(self.vocab.decode(row)),
                     "tokens": prefix + self.vocab.decode(row)} for row in out]
        prefix_tokens, prefix_ids = self._ids(prime, False) if prime else ([], np.zeros(0, dtype=np.int64))
        start = np.concatenate([[self.start_id], prefix_ids]).astype(np.int64)
        results: list[dict[str, Any]] = []
        for _ in range(100):  # draw until n sentences are long enough (the seed redraws short ones)
            wanted = n - len(results)
            rows = sample(self.runner, np.repeat(start[None], 2 * wanted, 0), steps=max_length, stop=self.end_id,
                          banned=banned, **options)
            for row in rows:
                tokens = prefix_tokens + self.vocab.decode(row)  # the prime as the user wrote it
                if len(tokens) >= min_length and len(results) < n:
                    results.append({"text": self.detokenize(tokens), "tokens": tokens})
            if len(results) == n:
                return results
        raise RnnkitError(f"could not draw {n} sentences of at least {min_length} words; lower --min-length")


def load(path: str | Path, *, engine: str = "auto", device: str = "auto") -> LanguageModel:
    """Open a model directory for scoring and generation."""
    return LanguageModel(load_model(path), engine=engine, device=device)
