"""A neural cache (Grave, Joulin and Usunier, 2016): a language model's memory of its own recent past.

The cache keeps the last ``window`` top-layer states h_i of the text read so far, each with the
word that followed it. At each position the states most like the current one vote for their words:

    p_cache(w | h_t) ∝ Σ_{i in window, w_i = w} exp(θ h_t · h_i)
    p(w) = (1 − λ) p_model(w) + λ p_cache(w)

No training: θ (how sharp the vote is) and λ (how much it counts) are fitted on validation text
(``fit``) and saved in the model directory. A position with nothing in its cache yet (a text's
first) keeps the model's probability. λ = 0 gives the model's own numbers exactly.

Everything here works on arrays the engines hand over (``Engine.observe``, ``Engine.step_states``);
both engines' states agree, and so do their cached probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.threads import on_one_blas_thread

DEFAULT_WINDOW = 2000  # Grave et al.'s window on WikiText-2
_CHUNK = 256  # queries compared with their window at a time: a (256 × window) block stays small
_LAMBDAS = np.round(np.arange(0.0, 0.951, 0.01), 2)
_THETA_STEPS = 2.0 ** np.arange(-2, 7.5, 0.5)  # θ × the mean squared norm of a state: the vote's sharpness


@dataclass(frozen=True)
class Cache:
    """A fitted cache: its window (positions), λ (its weight in the mixture) and θ (its sharpness)."""

    window: int
    lam: float
    theta: float

    def __post_init__(self) -> None:
        if not (isinstance(self.window, int) and self.window >= 1):
            raise RnnkitError(f"the cache's window must be a whole number of positions, at least 1 (got {self.window})")
        if not (0.0 <= self.lam < 1.0 and math.isfinite(self.theta) and self.theta >= 0.0):
            raise RnnkitError(f"the cache's λ must lie in [0, 1) and θ be at least 0 (got {self.lam}, {self.theta})")

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str) -> Cache:
        """A cache from a model directory's config.json (``where`` names it in errors)."""
        try:
            if isinstance(values["window"], bool) or not all(isinstance(values[k], int | float)
                                                              for k in ("window", "lam", "theta")):
                raise TypeError("a setting is not a number")
            return cls(values["window"], float(values["lam"]), float(values["theta"]))
        except (KeyError, TypeError, RnnkitError) as e:
            raise RnnkitError(f"{where}: the fitted cache is damaged ({e}); fit it again with `rnnkit fit-cache`") \
                from None

    def resized(self, window: int) -> Cache:
        """The same λ and θ over another window."""
        return Cache(window, self.lam, self.theta)


class CacheStream:
    """One text read in order: the last ``window`` states and the words that followed them."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.keys: np.ndarray | None = None  # (m, width)
        self.words = np.zeros(0, dtype=np.int64)

    # One BLAS thread: the products are small (a chunk of states by the window), and beside the
    # torch engine a second would fight torch's spinning OpenMP threads for the cores (dynamic
    # evaluation with the cache ran several times slower on torch than on numpy: docs/benchmarks.md).
    @on_one_blas_thread
    def target_probs(self, states: np.ndarray, targets: np.ndarray,
                     thetas: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """p_cache(target) (len(thetas), n) for the next ``n`` positions of the text (their states
        (n, width) and the words that follow them), and whether each had anything in its cache
        (n,); then those positions join the cache."""
        states = np.asarray(states, dtype=np.float32)
        targets = np.asarray(targets, dtype=np.int64)
        past = 0 if self.keys is None else len(self.keys)
        keys = states if self.keys is None else np.concatenate([self.keys, states])
        words = np.concatenate([self.words, targets])
        probs = np.zeros((len(thetas), len(states)))
        for a in range(0, len(states), _CHUNK):
            b = min(a + _CHUNK, len(states))
            lo = max(0, past + a - self.window)
            # Query t (at past + t) sees keys past + t − window … past + t − 1.
            position = np.arange(lo, past + b)[None, :]
            query = past + np.arange(a, b)[:, None]
            seen = (position < query) & (position >= query - self.window)
            sims = states[a:b] @ keys[lo:past + b].T
            top = np.where(seen, sims, -np.inf).max(axis=1, keepdims=True)
            top[~np.isfinite(top)] = 0.0  # nothing in the cache: every weight is 0 below
            sims -= top
            np.minimum(sims, 0.0, out=sims)  # what is not seen may lie above the top: keep exp finite
            match = words[lo:past + b][None, :] == targets[a:b, None]
            for k, theta in enumerate(thetas):
                weights = np.where(seen, np.exp(theta * sims), 0.0)
                total = weights.sum(axis=1)
                hit = np.where(match, weights, 0.0).sum(axis=1)
                probs[k, a:b] = np.divide(hit, total, out=np.zeros_like(hit), where=total > 0)
        has = np.arange(past, past + len(states)) > 0
        self.keys, self.words = keys[-self.window:], words[-self.window:]
        return probs, has

    @on_one_blas_thread
    def distribution(self, query: np.ndarray, theta: float, vocabulary: int) -> np.ndarray:
        """p_cache over the vocabulary (C,) for a query state (width,) after the whole cache (the
        next word's, in generation); zeros when the cache is empty."""
        if self.keys is None or not len(self.keys):
            return np.zeros(vocabulary)
        sims = (self.keys @ np.asarray(query, dtype=np.float32)).astype(np.float64)
        weights = np.exp(theta * (sims - sims.max()))
        return np.bincount(self.words, weights=weights / weights.sum(), minlength=vocabulary)

    def add(self, states: np.ndarray, words: np.ndarray) -> None:
        """States (n, width) and the words that followed them join the cache."""
        states = np.asarray(states, dtype=np.float32)
        keys = states if self.keys is None else np.concatenate([self.keys, states])
        self.keys, self.words = keys[-self.window:], np.concatenate([self.words, words])[-self.window:]


def mix(log_probs: np.ndarray, cache_probs: np.ndarray, has: np.ndarray, lam: float) -> np.ndarray:
    """log((1 − λ) p_model + λ p_cache) where the cache had something, else log p_model (float64).
    With λ = 0 the model's log-probabilities come back unchanged, bit for bit."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if lam == 0.0:
        return log_probs.copy()
    with np.errstate(divide="ignore"):
        mixed = np.logaddexp(math.log1p(-lam) + log_probs, math.log(lam) + np.log(cache_probs))
    return np.where(has, mixed, log_probs)


def mix_distributions(probs: np.ndarray, cache_probs: np.ndarray, lam: float) -> np.ndarray:
    """(1 − λ) p_model + λ p_cache for whole next-word distributions; an empty cache's row (all
    zeros) keeps the model's."""
    empty = cache_probs.sum(axis=1, keepdims=True) == 0
    return np.where(empty, probs, (1.0 - lam) * probs + lam * cache_probs)


@dataclass
class Fit:
    """What fitting found: the cache, and the loss (nats per token) without and with it."""

    cache: Cache
    loss: float
    cached_loss: float
    tokens: int

    def as_dict(self) -> dict[str, float | int]:
        return {**self.cache.to_dict(), "loss": self.loss, "cached_loss": self.cached_loss, "tokens": self.tokens}


def fit(observations: Iterable[tuple[int, np.ndarray, np.ndarray, np.ndarray]], window: int) -> Fit:
    """λ and θ that minimise the mean loss of ``observations``: (stream, log-probabilities,
    states, targets) of consecutive positions, each stream's in text order. θ is searched on a
    grid scaled by the states' mean squared norm (read off the first positions), λ on [0, 0.95]."""
    Cache(window, 0.0, 0.0)  # a window that is not a whole number of positions is one clear error
    streams: dict[int, CacheStream] = {}
    thetas: np.ndarray | None = None
    model, cached, present = [], [], []
    for stream, log_probs, states, targets in observations:
        if thetas is None:
            scale = float(np.mean(np.sum(np.asarray(states, dtype=np.float64) ** 2, axis=1))) or 1.0
            thetas = _THETA_STEPS / scale
        probs, has = streams.setdefault(stream, CacheStream(window)).target_probs(states, targets, thetas)
        model.append(np.asarray(log_probs, dtype=np.float64))
        cached.append(probs)
        present.append(has)
    if thetas is None:
        raise RnnkitError("no text to fit the cache on; give a corpus whose validation split is not empty")
    log_probs, probs, has = np.concatenate(model), np.concatenate(cached, axis=1), np.concatenate(present)
    best = (float(-log_probs.mean()), 0.0, float(thetas[0]))
    for k, theta in enumerate(thetas):
        for lam in _LAMBDAS[1:]:
            loss = float(-mix(log_probs, probs[k], has, float(lam)).mean())
            if loss < best[0]:
                best = (loss, float(lam), float(theta))
    return Fit(Cache(window, best[1], best[2]), float(-log_probs.mean()), best[0], len(log_probs))


def cached_loss(observations: Iterable[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
                cache: Cache) -> tuple[float, float, int]:
    """The mean loss of ``observations`` without and with ``cache``, and the number of positions."""
    streams: dict[int, CacheStream] = {}
    plain = mixed = 0.0
    count = 0
    for stream, log_probs, states, targets in observations:
        probs, has = streams.setdefault(stream, CacheStream(cache.window)).target_probs(states, targets,
                                                                                        [cache.theta])
        plain -= float(np.sum(log_probs, dtype=np.float64))
        mixed -= float(mix(log_probs, probs[0], has, cache.lam).sum())
        count += len(log_probs)
    return plain / max(count, 1), mixed / max(count, 1), count


class CachedState:
    """A generation's state with a cache: the engine's state, each row's cache, and the top
    states the last step read (they join the cache once the word that follows them is known)."""

    def __init__(self, h, streams: list[CacheStream], top: np.ndarray | None) -> None:
        self.h, self.streams, self.top = h, streams, top

    def __getitem__(self, key: tuple) -> CachedState:
        """``sample`` keeps the rows still going as ``h[..., rows, :]``: the same rows of everything."""
        rows = key[1]
        return CachedState(self.h[key], [self.streams[r] for r in rows], None if self.top is None else self.top[rows])


class CachedRunner:
    """An engine whose next-word distributions mix in each row's cache (what ``generate.sample``
    runs when the model has a cache): the prefix and every word drawn join the row's cache."""

    def __init__(self, engine, cache: Cache, vocabulary: int) -> None:
        self.engine, self.cache, self.vocabulary = engine, cache, vocabulary

    def initial_state(self, n: int) -> CachedState:
        return CachedState(self.engine.initial_state(n), [CacheStream(self.cache.window) for _ in range(n)], None)

    def step(self, tokens: np.ndarray, state: CachedState) -> tuple[np.ndarray, CachedState]:
        if state.top is not None:
            for row, stream in enumerate(state.streams):
                stream.add(state.top[row:row + 1], tokens[row:row + 1])
        probs, top, h = self.engine.step_states(tokens, state.h)
        cache_probs = np.stack([s.distribution(top[r], self.cache.theta, self.vocabulary)
                                for r, s in enumerate(state.streams)])
        return mix_distributions(probs, cache_probs, self.cache.lam), CachedState(h, state.streams, top)
