"""Batches for sentence-mode language modelling (the seed's): every sentence on its own.

A sentence of ids ``w`` becomes ``x = [START] + w`` and ``y = w + [END]``; a batch pads its
sentences to the longest with a mask. With ``shuffle``, sentences are grouped by length (sorted
within pools of 50 batches) so that little padding is computed, and the batches come in random
order; without it, they come in corpus order, as in the seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from rnnkit.data.corpus import PreparedCorpus

_POOL_BATCHES = 50


@dataclass
class Batch:
    x: np.ndarray  # (B, T) inputs
    y: np.ndarray  # (B, T) targets
    mask: np.ndarray  # (B, T) True on real tokens
    total_rows: int | None = None  # the whole step's rows, over every process (None: these)

    @property
    def tokens(self) -> int:
        return int(self.mask.sum())

    @property
    def step_rows(self) -> int:
        return len(self.x) if self.total_rows is None else self.total_rows

    @property
    def size(self) -> int:
        return len(self.x)

    def rows(self, part: slice) -> Batch:
        """These rows (a micro-batch, or one process's share)."""
        return Batch(self.x[part], self.y[part], self.mask[part], self.total_rows)


def pad_batch(sequences: list[np.ndarray] | list[list[int]], pad: int = 0,
              extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of ids → (ids (B, T), mask (B, T)), padded at the end to the longest, plus ``extra``
    columns."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    T = int(lengths.max(initial=0)) + extra
    ids = np.full((len(sequences), T), pad, dtype=np.int64)
    mask = np.arange(T)[None, :] < lengths[:, None]
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = s
    return ids, mask


def make_batch(sentences: list[np.ndarray], start_id: int, end_id: int) -> Batch:
    """``x = [START] + s`` and ``y = s + [END]`` for each sentence, padded with 0 and masked."""
    y, mask = pad_batch(sentences, extra=1)
    rows, lengths = np.arange(len(sentences)), mask.sum(axis=1)
    y[rows, lengths] = end_id
    mask[rows, lengths] = True
    x = np.zeros_like(y)
    x[:, 0] = start_id
    x[:, 1:] = np.where(mask[:, 1:], y[:, :-1], 0)
    return Batch(x, y, mask)


def held_out_sample(total: int, rows: int, seed: int) -> np.ndarray:
    """Up to ``rows`` of ``total`` held-out rows drawn at random under ``seed``, in their order: the
    same ones at every evaluation, and from all of the split rather than its start."""
    return np.sort(np.random.default_rng(seed).permutation(total)[:rows])


def grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The indices of each batch of an epoch, in random order, each batch of similar lengths
    (sorted within pools of 50 batches), so that little padding is computed."""
    order = rng.permutation(len(lengths))
    pool = batch_size * _POOL_BATCHES
    for a in range(0, len(order), pool):
        chunk = order[a:a + pool]
        order[a:a + pool] = chunk[np.argsort(lengths[chunk], kind="stable")]
    starts = np.arange(0, len(order), batch_size)
    return [order[a:a + batch_size] for a in starts[rng.permutation(len(starts))]]


def sentence_batches(corpus: PreparedCorpus, split: str, batch_size: int, *, shuffle: bool = False,
                     rng: np.random.Generator | None = None, start: int = 0,
                     share: Callable[[int], slice] | None = None) -> Iterator[Batch]:
    """The batches of one pass over a split; ``start`` skips that many (resuming mid-epoch: the
    random order is drawn in full first, so ``rng`` ends in the same state either way).
    ``share(n)`` picks a process's part of each batch's n sentences; a process left with none
    gets one masked row, so that every process takes every step."""
    ids, offsets = corpus.ids(split), np.asarray(corpus.offsets(split))
    lengths = np.diff(offsets)
    if shuffle:
        batches = grouped_batches(lengths, batch_size, rng or np.random.default_rng())
    else:
        batches = [np.arange(a, min(a + batch_size, len(lengths))) for a in range(0, len(lengths), batch_size)]
    for chosen in batches[start:]:
        mine = chosen if share is None else chosen[share(len(chosen))]
        batch = make_batch([np.asarray(ids[offsets[i]:offsets[i + 1]], dtype=np.int64) for i in mine],
                           corpus.start_id, corpus.end_id)
        if not len(mine):
            batch = Batch(np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64),
                          np.zeros((1, 1), dtype=bool))
        batch.total_rows = len(chosen)
        yield batch


def evaluation_batches(corpus: PreparedCorpus, split: str, batch_size: int = 64, *,
                       in_order: bool = False) -> Iterator[Batch]:
    """Every sentence of a split once, sorted by length (least padding), or ``in_order`` as the
    text has them (what a cache, which remembers earlier sentences, needs)."""
    ids, offsets = corpus.ids(split), np.asarray(corpus.offsets(split))
    order = np.arange(len(offsets) - 1) if in_order else np.argsort(np.diff(offsets), kind="stable")
    for a in range(0, len(order), batch_size):
        yield make_batch([np.asarray(ids[offsets[i]:offsets[i + 1]], dtype=np.int64) for i in order[a:a + batch_size]],
                         corpus.start_id, corpus.end_id)


class TokenStream:
    """A split as one continuous sequence, read lazily from the memory-mapped ids: indexing
    (a slice or an array of positions) reads only the tokens asked for and holds nothing in
    proportion to the corpus, so a corpus larger than memory streams. Word level: a SENTENCE_END,
    then every sentence followed by SENTENCE_END (so each word and each sentence end is
    predicted once); characters: the text."""

    def __init__(self, corpus: PreparedCorpus, split: str) -> None:
        self.ids, self.end_id = corpus.ids(split), corpus.end_id
        self.offsets = corpus.offsets(split)  # memory-mapped too
        self.sentences = len(self.offsets) - 1
        self.length = len(self.ids) + (0 if self.end_id is None else self.sentences + 1)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            key = np.arange(*key.indices(self.length))
        positions = np.asarray(key, dtype=np.int64)
        if self.end_id is None:
            return np.asarray(self.ids[positions], dtype=np.int64)
        # Position p holds a SENTENCE_END (p = 0, or the end of a sentence), else the id that
        # stands (ends before p) + 1 places back.
        before = self._ends_up_to(positions)
        is_end = (positions == 0) | ((before > 0) & (self._end(np.maximum(before - 1, 0)) == positions))
        out = np.full(positions.shape, self.end_id, dtype=np.int64)
        out[~is_end] = self.ids[positions[~is_end] - before[~is_end] - 1]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[:].astype(dtype or np.int64)

    def _end(self, sentence: np.ndarray) -> np.ndarray:
        """Where sentence i's SENTENCE_END stands in the stream."""
        return np.asarray(self.offsets[sentence + 1], dtype=np.int64) + sentence + 1

    def _ends_up_to(self, positions: np.ndarray) -> np.ndarray:
        """How many sentence ends stand at or before each position: a binary search over the
        memory-mapped offsets, all positions at once (about log2(sentences) reads of each)."""
        low, high = np.zeros(positions.shape, dtype=np.int64), np.full(positions.shape, self.sentences)
        while (open_ := low < high).any():
            middle = np.minimum((low + high) // 2, self.sentences - 1)
            right = open_ & (self._end(middle) <= positions)
            low = np.where(right, middle + 1, low)
            high = np.where(open_ & ~right, middle, high)
        return low


def stream_tokens(corpus: PreparedCorpus, split: str) -> TokenStream:
    """A split as one continuous sequence (``TokenStream``)."""
    return TokenStream(corpus, split)


def stream_batches(tokens: TokenStream | np.ndarray, batch_size: int, bptt: int, start: int = 0,
                   rows: slice = slice(None)) -> Iterator[Batch]:
    """Training windows over a stream cut into ``batch_size`` rows (the remainder is dropped), each
    window ``bptt`` steps but the last, which also takes what is left (up to 2·bptt − 1 steps);
    consecutive windows continue each row, so the state carries over. ``start`` skips that many
    windows (resuming mid-epoch); ``rows`` picks some of the rows (a process's share), each read on
    its own."""
    length = (len(tokens) - 1) // batch_size
    windows = stream_windows(tokens, batch_size, bptt)
    starts = np.arange(batch_size, dtype=np.int64)[rows] * length
    for k in range(start, windows):
        end = length if k == windows - 1 else (k + 1) * bptt
        span = starts[:, None] + np.arange(k * bptt, end + 1)[None, :]
        window = np.asarray(tokens[span], dtype=np.int64)
        x, y = np.ascontiguousarray(window[:, :-1]), np.ascontiguousarray(window[:, 1:])
        yield Batch(x, y, np.ones(x.shape, dtype=bool), total_rows=batch_size)


def stream_windows(tokens: TokenStream | np.ndarray, batch_size: int, bptt: int) -> int:
    """How many windows ``stream_batches`` makes. A remainder joins the last window rather than
    making its own: a step on a few tokens is a step on their noisy gradient (with SGD and
    clipping, as long as any other), and it would come last, just before the epoch's evaluation
    (at word_language_model's kjv-lm settings, 2 tokens a row: perplexity after epoch 1 127.9
    against 135.8 over five seeds, docs/benchmarks.md)."""
    length = (len(tokens) - 1) // batch_size
    return max(1, length // bptt) if length >= 1 else 0


def stream_evaluation_batches(tokens: np.ndarray, rows: int, window: int) -> Iterator[Batch]:
    """Every next-token prediction of a stream exactly once, as ``rows`` contiguous parts side by
    side (each from a zero state, as the stream's start is; PyTorch's word_language_model
    evaluates the same way), in windows of ``window`` steps with the state carried over. The
    last part is padded at its end, masked."""
    predictions = len(tokens) - 1
    rows = max(1, min(rows, predictions))
    length = -(-predictions // rows)
    starts = np.arange(rows, dtype=np.int64)[:, None] * length
    for c in range(0, length, window):
        steps = starts + np.arange(c, min(c + window, length))[None, :]
        mask = steps < predictions
        steps = np.where(mask, steps, 0)
        x, y = np.asarray(tokens[steps], dtype=np.int64), np.asarray(tokens[steps + 1], dtype=np.int64)
        yield Batch(np.where(mask, x, 0), np.where(mask, y, 0), mask)
