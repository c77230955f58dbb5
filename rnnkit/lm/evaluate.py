"""The loss of a language model over a prepared split: what training evaluates, and ``rnnkit evaluate``.

Sentence mode scores each sentence from a zero state, in batches sorted by length. Stream mode
reads the split as one stream, in ``_EVAL_ROWS`` contiguous parts side by side (each from a zero
state, as the stream's start is; PyTorch's word_language_model evaluates the same way), so every
token is predicted once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from rnnkit.data.batching import (
    evaluation_batches,
    stream_evaluation_batches,
    stream_tokens,
)
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.lm.engine import Engine

_EVAL_ROWS, _EVAL_WINDOW = 10, 256  # stream mode: parts side by side, steps per window

MODES = ("sentence", "stream")


def perplexity(loss: float) -> float:
    """exp(loss), or infinity where that overflows."""
    return math.exp(loss) if loss < 700 else math.inf


def resolve_mode(mode: str, corpus: PreparedCorpus) -> str:
    """``auto``: sentence for words, stream for characters; sentence mode needs sentences."""
    if mode == "auto":
        mode = "stream" if corpus.level == "char" else "sentence"
    if mode not in MODES:
        raise RnnkitError(f"unknown mode {mode!r}; use sentence or stream")
    if mode == "sentence" and corpus.start_id is None:
        raise RnnkitError("sentence mode needs a word-level corpus; use --mode stream for characters")
    return mode


def _stream_batches(corpus: PreparedCorpus, split: str):
    return list(stream_evaluation_batches(stream_tokens(corpus, split), _EVAL_ROWS, _EVAL_WINDOW))


def split_loss(engine: Engine, corpus: PreparedCorpus, split: str, mode: str) -> tuple[float, int]:
    """Mean loss (nats) per predicted token over a split, and the number of predicted tokens."""
    total, tokens = 0.0, 0
    if mode == "stream":
        batches = _stream_batches(corpus, split)
        h = engine.initial_state(len(batches[0].x)) if batches else None
        for batch in batches:
            loss, h = engine.loss(batch, h)
            total, tokens = total + loss, tokens + batch.tokens
    else:
        for batch in evaluation_batches(corpus, split):
            loss, _ = engine.loss(batch)
            total, tokens = total + loss, tokens + batch.tokens
    return total / max(tokens, 1), tokens


Observation = tuple[int, np.ndarray, np.ndarray, np.ndarray]  # stream, log-probabilities, states, targets


def observations(engine: Engine, corpus: PreparedCorpus, split: str, mode: str) -> Iterator[Observation]:
    """Every predicted token of a split with the top state that predicted it, as (stream,
    log-probabilities, states, targets) of consecutive positions, each stream's in text order:
    sentence mode reads the sentences in order as one stream; stream mode's parts side by side are
    a stream each. The positions and their log-probabilities are those ``split_loss`` sums."""
    if mode == "stream":
        batches = _stream_batches(corpus, split)
        h = engine.initial_state(len(batches[0].x)) if batches else None
        for batch in batches:
            log_probs, states, h = engine.observe(batch.x, batch.y, h)
            for row, real in enumerate(batch.mask):
                yield row, log_probs[row][real], states[row][real], batch.y[row][real]
    else:
        for batch in evaluation_batches(corpus, split, in_order=True):
            log_probs, states, _ = engine.observe(batch.x, batch.y)
            yield 0, log_probs[batch.mask], states[batch.mask], batch.y[batch.mask]
