"""Batches for sentence-mode language modelling (the seed's): every sentence on its own.

A sentence of ids ``w`` becomes ``x = [START] + w`` and ``y = w + [END]``; a batch pads its
sentences to the longest with a mask. With ``shuffle``, sentences are grouped by length (sorted
within pools of 50 batches) so that little padding is computed, and the batches come in random
order; without it, they come in corpus order, as in the seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rnnkit.data.corpus import PreparedCorpus

_POOL_BATCHES = 50


@dataclass
class Batch:
    x: np.ndarray  # (B, T) inputs
    y: np.ndarray  # (B, T) targets
    mask: np.ndarray  # (B, T) True on real tokens

    @property
    def tokens(self) -> int:
        return int(self.mask.sum())


def make_batch(sentences: list[np.ndarray], start_id: int, end_id: int) -> Batch:
    T = max(len(s) for s in sentences) + 1
    x = np.zeros((len(sentences), T), dtype=np.int64)
    y = np.zeros((len(sentences), T), dtype=np.int64)
    mask = np.zeros((len(sentences), T), dtype=bool)
    for i, s in enumerate(sentences):
        n = len(s)
        x[i, 0] = start_id
        x[i, 1:n + 1] = s
        y[i, :n] = s
        y[i, n] = end_id
        mask[i, : n + 1] = True
    return Batch(x, y, mask)


def sentence_batches(corpus: PreparedCorpus, split: str, batch_size: int, *, shuffle: bool = False,
                     rng: np.random.Generator | None = None) -> Iterator[Batch]:
    ids, offsets = corpus.ids(split), np.asarray(corpus.offsets(split))
    lengths = np.diff(offsets)
    order = np.arange(len(lengths))
    if shuffle:
        rng = rng or np.random.default_rng()
        order = rng.permutation(order)
        pool = batch_size * _POOL_BATCHES
        for a in range(0, len(order), pool):  # group similar lengths together, pool by pool
            chunk = order[a:a + pool]
            order[a:a + pool] = chunk[np.argsort(lengths[chunk], kind="stable")]
    starts = list(range(0, len(order), batch_size))
    if shuffle:
        starts = [starts[i] for i in rng.permutation(len(starts))]
    for a in starts:
        chosen = order[a:a + batch_size]
        yield make_batch([np.asarray(ids[offsets[i]:offsets[i + 1]], dtype=np.int64) for i in chosen],
                         corpus.start_id, corpus.end_id)


def evaluation_batches(corpus: PreparedCorpus, split: str, batch_size: int = 64) -> Iterator[Batch]:
    """Every sentence of a split once, sorted by length (least padding); order does not matter here."""
    ids, offsets = corpus.ids(split), np.asarray(corpus.offsets(split))
    order = np.argsort(np.diff(offsets), kind="stable")
    for a in range(0, len(order), batch_size):
        yield make_batch([np.asarray(ids[offsets[i]:offsets[i + 1]], dtype=np.int64) for i in order[a:a + batch_size]],
                         corpus.start_id, corpus.end_id)
