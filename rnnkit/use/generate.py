"""Generating text from a language model.

``sample_sentence`` is the seed's sampler: start from SENTENCE_START, draw each next token from
the model's distribution until SENTENCE_END, drawing again whenever a banned token (the unknown
token) comes up. The state is carried from step to step, so a sentence of n tokens costs n steps
(the seed re-ran the whole prefix for every word).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


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
