"""What decoding needs of an encoder–decoder's engine, whichever runs it (``rnnkit.models.engine``)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnnkit.models.engine import Trainable
from rnnkit.seq2seq.config import Seq2SeqConfig


@runtime_checkable
class Seq2SeqEngine(Trainable, Protocol):
    """An encoder–decoder on one engine; with an optimizer, also a learner. Decoding goes step by
    step on the engine's own arrays (``Encoded`` holds them)."""

    config: Seq2SeqConfig

    def encode(self, x: np.ndarray, mask: np.ndarray) -> Any:
        """The encoded source rows (an ``Encoded``: annotations, mask, the decoder's first state)."""

    def step(self, tokens: np.ndarray, state: Any, encoded: Any,
             allowed: np.ndarray | None = None) -> tuple[np.ndarray, Any, np.ndarray | None]:
        """Log-probabilities (N, C) of the next token after ``tokens`` (N,), the new state, and the
        attention weights (N, S) (None without attention); ``allowed`` (N, S): the only source
        positions this step may attend to."""

    def select(self, state: Any, encoded: Any, rows: np.ndarray) -> tuple[Any, Any]:
        """The state and encoded source of ``rows`` (beams follow their hypotheses)."""
