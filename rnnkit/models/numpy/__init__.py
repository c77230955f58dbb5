"""The numpy reference engine: readable, vectorised, gradient-checked."""

from __future__ import annotations

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.numpy.gated import GATES, NumpyGated
from rnnkit.models.numpy.gradcheck import gradient_check
from rnnkit.models.numpy.rnn import NumpyRNN, pad_batch, softmax
from rnnkit.models.numpy.tutorial_gru import TutorialGRU

CELLS = ("rnn", "gru", "lstm")

__all__ = ["CELLS", "NumpyGated", "NumpyRNN", "TutorialGRU", "cell_of", "gradient_check", "initialize",
           "numpy_model", "pad_batch", "softmax"]


def cell_of(params: dict[str, np.ndarray]) -> str:
    """The cell a set of weights belongs to: gated cells have biases ``bw``, and G·H rows in ``W``."""
    if "b" in params and params["U"].ndim == 3:
        return "tutorial-gru"
    if "bw" not in params:
        return "rnn"
    W = params["W"]
    return {g: c for c, g in GATES.items()}[W.shape[0] // W.shape[1]]


def initialize(cell: str, vocab_size: int, hidden: int, **options) -> NumpyRNN:
    """A new model of ``cell`` with the options of ``NumpyRNN.initialize`` / ``NumpyGated.initialize``."""
    if cell not in CELLS:
        raise RnnkitError(f"unknown cell {cell!r}; use {', '.join(CELLS)}")
    if cell == "rnn":
        if options.pop("bidirectional", False):
            raise RnnkitError("the bidirectional option is for gru and lstm encoders")
        return NumpyRNN.initialize(vocab_size, hidden, **options)
    options.pop("bptt_truncate", None)
    return NumpyGated.initialize(vocab_size, hidden, cell=cell, **options)


def numpy_model(params: dict[str, np.ndarray], bptt_truncate: int = 4, dropout: float = 0.0) -> NumpyRNN:
    """The numpy model for a set of weights (the cell follows from their names and shapes)."""
    cell = cell_of(params)
    if cell == "tutorial-gru":
        return TutorialGRU(params)
    return NumpyRNN(params, bptt_truncate, dropout) if cell == "rnn" else NumpyGated(params, cell, dropout)
