"""Generating text from a language model.

``sample_sentence`` is the seed's sampler: start from SENTENCE_START, draw each next token from
the model's distribution until SENTENCE_END, drawing again whenever a banned token (the unknown
token) comes up. The state is carried from step to step, so a sentence of n tokens costs n steps
(the seed re-ran the whole prefix for every word).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from rnnkit.options import option


@dataclass(frozen=True)
class Sampling:
    """How ``LanguageModel.generate`` samples, each option declared once: the method's keywords
    (and their defaults) and ``rnnkit generate``'s flags read it here. The upper bounds keep a
    typo (``n=10**30``) from asking for more than memory holds."""

    n: int = option(10, "how many sentences (character models: samples)", bounds="[1, 1000000]", flag="-n")
    min_length: int = option(7, "draw again sentences shorter than this", bounds="[0, 100000]")
    max_length: int = option(100, "longest sentence, in tokens", bounds="[1, 100000]")
    seed: int | None = option(None, "the same seed gives the same text", bounds="[0, 4294967295]")
    temperature: float = option(1.0, "below 1 surer, above 1 more varied", bounds="(0, )")
    top_k: int | None = option(None, "draw from the k likeliest tokens only", bounds="[1, 1000000000]")
    top_p: float | None = option(None, "draw from the likeliest tokens that hold this share of the probability",
                                 bounds="(0, 1]")
    prime: str | None = option(None, "start from this text")
    length: int = option(200, "character models: characters to generate",
                         bounds="[1, 10000000]")


def draw(probs: np.ndarray, rng: np.random.Generator | None = None) -> int:
    """One token id drawn from ``probs``; with no ``rng``, numpy's global generator, as the seed does."""
    p = probs.astype(np.float64)
    p /= p.sum()
    if rng is None:
        return int(np.argmax(np.random.multinomial(1, p)))
    return int(rng.choice(len(p), p=p))


def sample_sentence(model, start_id: int, end_id: int, *, banned: Iterable[int] = (), max_length: int = 1000,
                    rng: np.random.Generator | None = None) -> list[int]:
    """Token ids of one sampled sentence, markers excluded. ``model`` needs ``step`` and ``initial_state``."""
    banned = set(banned)
    h = model.initial_state(1)
    token, ids = start_id, []
    while len(ids) < max_length:
        probs, h = model.step(np.array([token]), h)
        token = draw(probs[0], rng)
        while token in banned:
            token = draw(probs[0], rng)
        if token == end_id:
            break
        ids.append(token)
    return ids


def adjust(probs: np.ndarray, *, banned: Iterable[int] = (), temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None) -> np.ndarray:
    """Next-token distributions (rows) after the sampling options, renormalised.

    Banning a token and renormalising is the seed's "draw again until it is not the unknown
    token", in one step. ``temperature`` divides the logits; ``top_k`` keeps the k likeliest
    tokens; ``top_p`` keeps the smallest set of likeliest tokens whose mass reaches p.
    """
    p = probs.astype(np.float64, copy=True)
    p[:, list(banned)] = 0.0
    if temperature != 1.0:
        with np.errstate(divide="ignore", over="ignore"):  # log 0 = -inf; a tiny temperature sends the rest there
            logits = np.log(p)
            # The largest subtracted before dividing: it stays 0, so even a temperature of 1e-300 is greedy, not NaN.
            p = np.exp((logits - logits.max(axis=1, keepdims=True)) / temperature)
    if top_k is not None and top_k < p.shape[1]:
        cut = np.partition(p, -top_k, axis=1)[:, -top_k][:, None]
        p[p < cut] = 0.0
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, axis=1)
        sorted_p = np.take_along_axis(p, order, axis=1)
        mass = np.cumsum(sorted_p, axis=1) / sorted_p.sum(axis=1, keepdims=True)
        drop = mass - sorted_p / sorted_p.sum(axis=1, keepdims=True) >= top_p  # mass before this token already enough
        sorted_p[drop] = 0.0
        np.put_along_axis(p, order, sorted_p, axis=1)
    p /= p.sum(axis=1, keepdims=True)
    return p


_BLOCK = 128


def _pick(cumulative: np.ndarray, u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the first column whose cumulative weight exceeds u — never a zero-weight column."""
    k = (cumulative <= u[:, None]).sum(axis=1)
    last_positive = weights.shape[1] - 1 - np.argmax(weights[:, ::-1] > 0, axis=1)
    return np.minimum(k, last_positive)


def draw_rows(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw from each row of weights (they need not sum to 1), all rows at once.

    Inverse CDF in two levels, so that no full (rows × vocabulary) cumulative sum is built: the
    weight of each block of 128 tokens picks a block, then the block's own weights pick the token.
    """
    n, C = p.shape
    rows = np.arange(n)
    starts = np.arange(0, C, _BLOCK)
    # Summed in the weights' own precision (six times faster than in float64 for float32 weights).
    block_mass = np.add.reduceat(p, starts, axis=1).astype(np.float64)
    block_cumulative = np.cumsum(block_mass, axis=1)
    u = rng.random(n) * block_cumulative[:, -1]
    block = _pick(block_cumulative, u, block_mass)
    within = u - (block_cumulative[rows, block] - block_mass[rows, block])
    columns = starts[block][:, None] + np.arange(_BLOCK)
    inside = columns < C
    weights = np.where(inside, p[rows[:, None], np.minimum(columns, C - 1)], 0.0)
    return starts[block] + _pick(np.cumsum(weights, axis=1), within, weights)


def sample(runner, prefix: np.ndarray, *, steps: int, stop: int | None, banned: Iterable[int] = (),
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           rng: np.random.Generator | None = None) -> list[list[int]]:
    """Continue each row of ``prefix`` (n, P) for up to ``steps`` tokens, all rows together; a row
    ends at ``stop`` (not included) and leaves the batch, so the model runs on live rows only.
    ``runner`` needs ``initial_state`` and ``step``; its states hold the rows on their next-to-last axis."""
    rng = rng or np.random.default_rng()
    n = len(prefix)
    h = runner.initial_state(n)
    probs = None
    for t in range(prefix.shape[1]):
        probs, h = runner.step(prefix[:, t], h)
    out: list[list[int]] = [[] for _ in range(n)]
    live = np.arange(n)  # which row of ``out`` each row of the batch is
    banned = list(banned)
    plain = temperature == 1.0 and top_k is None and top_p is None
    for _ in range(steps):
        if plain:  # the seed's sampler: zero the banned tokens in place (each step's probs are fresh)
            probs[:, banned] = 0.0
            weights = probs
        else:
            weights = adjust(probs, banned=banned, temperature=temperature, top_k=top_k, top_p=top_p)
        tokens = draw_rows(weights, rng)
        going = np.ones(len(live), dtype=bool) if stop is None else tokens != stop
        for row, token in zip(live[going], tokens[going]):
            out[row].append(int(token))
        if not going.all():
            if not going.any():
                break
            kept = np.flatnonzero(going)
            live, tokens, h = live[kept], tokens[kept], h[..., kept, :]
        probs, h = runner.step(tokens, h)
    return out
