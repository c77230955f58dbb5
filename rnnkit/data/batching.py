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


@dataclass
class PairBatch:
    """(context, response) pairs for a ranker: padded ids and masks; ``labels`` (B,) 1 for a true
    response and 0 for a random one (binary objective), or None (in-batch negatives)."""

    contexts: np.ndarray
    context_mask: np.ndarray
    responses: np.ndarray
    response_mask: np.ndarray
    labels: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.contexts)


@dataclass
class Seq2SeqBatch:
    """Source and target rows of an encoder–decoder: the source padded (``x``, ``x_mask``), the
    target fed in as ``[START] + t`` (``y_in``) and predicted as ``t + [END]`` (``y_out``)."""

    x: np.ndarray
    x_mask: np.ndarray
    y_in: np.ndarray
    y_out: np.ndarray
    y_mask: np.ndarray

    @property
    def size(self) -> int:
        return len(self.x)

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.x, self.x_mask, self.y_in, self.y_out, self.y_mask


def make_seq2seq_batch(sources: list[np.ndarray], targets: list[np.ndarray], start_id: int,
                       end_id: int) -> Seq2SeqBatch:
    x, x_mask = pad_batch(sources)
    target = make_batch(targets, start_id, end_id)
    return Seq2SeqBatch(x, x_mask, target.x, target.y, target.mask)


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
                     rng: np.random.Generator | None = None, start: int = 0) -> Iterator[Batch]:
    """The batches of one pass over a split; ``start`` skips that many (resuming mid-epoch: the
    random order is drawn in full first, so ``rng`` ends in the same state either way)."""
    ids, offsets = corpus.ids(split), np.asarray(corpus.offsets(split))
    lengths = np.diff(offsets)
    if shuffle:
        batches = grouped_batches(lengths, batch_size, rng or np.random.default_rng())
    else:
        batches = [np.arange(a, min(a + batch_size, len(lengths))) for a in range(0, len(lengths), batch_size)]
    for chosen in batches[start:]:
        yield make_batch([np.asarray(ids[offsets[i]:offsets[i + 1]], dtype=np.int64) for i in chosen],
                         corpus.start_id, corpus.end_id)


def evaluation_batches(corpus: PreparedCorpus, split: str, batch_size: int = 64) -> Iterator[Batch]:
    """Every sentence of a split once, sorted by length (least padding); order does not matter here."""
    ids, offsets = corpus.ids(split), np.asarray(corpus.offsets(split))
    order = np.argsort(np.diff(offsets), kind="stable")
    for a in range(0, len(order), batch_size):
        yield make_batch([np.asarray(ids[offsets[i]:offsets[i + 1]], dtype=np.int64) for i in order[a:a + batch_size]],
                         corpus.start_id, corpus.end_id)


def stream_tokens(corpus: PreparedCorpus, split: str) -> np.ndarray:
    """A split as one continuous sequence. Word level: a SENTENCE_END, then every sentence followed by
    SENTENCE_END (so each word and each sentence end is predicted once); characters: the text."""
    ids = np.asarray(corpus.ids(split), dtype=np.int64)
    if corpus.end_id is None:
        return ids
    offsets = np.asarray(corpus.offsets(split))
    ends = offsets[1:] + np.arange(1, len(offsets))  # where each SENTENCE_END lands after insertion
    stream = np.empty(len(ids) + len(offsets), dtype=np.int64)
    stream[0] = corpus.end_id
    body = stream[1:]
    is_end = np.zeros(len(body), dtype=bool)
    is_end[ends - 1] = True
    body[is_end] = corpus.end_id
    body[~is_end] = ids
    return stream


def stream_batches(tokens: np.ndarray, batch_size: int, bptt: int, start: int = 0) -> Iterator[Batch]:
    """Training windows over a stream cut into ``batch_size`` rows (the remainder is dropped), each
    window ``bptt`` steps; consecutive windows continue each row, so the state carries over.
    ``start`` skips that many windows (resuming mid-epoch)."""
    length = (len(tokens) - 1) // batch_size
    if length < 1:
        return
    rows_x = tokens[: batch_size * length].reshape(batch_size, length)
    rows_y = tokens[1: batch_size * length + 1].reshape(batch_size, length)
    for window, a in enumerate(range(0, length, bptt)):
        if window < start:
            continue
        x, y = rows_x[:, a:a + bptt], rows_y[:, a:a + bptt]
        yield Batch(np.ascontiguousarray(x), np.ascontiguousarray(y), np.ones(x.shape, dtype=bool))


def stream_windows(tokens: np.ndarray, batch_size: int, bptt: int) -> int:
    length = (len(tokens) - 1) // batch_size
    return -(-length // bptt) if length >= 1 else 0


def stream_evaluation_batches(tokens: np.ndarray, rows: int, window: int) -> Iterator[Batch]:
    """Every next-token prediction of a stream exactly once, as ``rows`` contiguous parts side by
    side (each from a zero state, as the stream's start is; PyTorch's word_language_model
    evaluates the same way), in windows of ``window`` steps with the state carried over. The
    last part is padded at its end, masked."""
    predictions = len(tokens) - 1
    rows = max(1, min(rows, predictions))
    length = -(-predictions // rows)
    x = np.zeros((rows, length), dtype=np.int64)
    y = np.zeros((rows, length), dtype=np.int64)
    mask = np.zeros((rows, length), dtype=bool)
    for r in range(rows):
        a, b = r * length, min((r + 1) * length, predictions)
        x[r, : b - a], y[r, : b - a], mask[r, : b - a] = tokens[a:b], tokens[a + 1:b + 1], True
    for c in range(0, length, window):
        yield Batch(np.ascontiguousarray(x[:, c:c + window]), np.ascontiguousarray(y[:, c:c + window]),
                    np.ascontiguousarray(mask[:, c:c + window]))
