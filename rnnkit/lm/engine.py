"""What using a language model needs of its engine, whichever runs it (``rnnkit.models.engine``)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnnkit.models.engine import Trainable


@runtime_checkable
class Engine(Trainable, Protocol):
    """A language model on one engine; with an optimizer, also a learner."""

    config: Any  # an LMConfig

    # What use needs: scoring and generation.
    def initial_state(self, batch: int) -> Any: ...

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log P(y_t | x_≤t) (B, T) from a zero state."""

    def observe(self, x: np.ndarray, y: np.ndarray, h: Any = None) -> tuple[np.ndarray, np.ndarray, Any]:
        """log P(y_t | x_≤t) (B, T) from state ``h`` (zero when None), the top layer's states
        (B, T, width) — what the output layer reads, and a neural cache keys on — and the last state."""

    def step(self, tokens: np.ndarray, h: Any) -> tuple[np.ndarray, Any]:
        """Next-token probabilities (B, C) after ``tokens`` (B,), and the new state."""

    def step_states(self, tokens: np.ndarray, h: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """``step``, with the top layer's states (B, width) between the probabilities and the state."""

    # Dynamic evaluation: the weights adapt to the text as it is read.
    def adapt(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: Any, lr: float,
              decay: float) -> tuple[np.ndarray, np.ndarray, Any]:
        """``observe`` (without dropout), then one SGD step on the mean loss of the real tokens,
        pulled back toward the weights before the first ``adapt`` by ``decay``:
        w ← w − lr ∇ + decay (w₀ − w)."""

    def restore(self) -> None:
        """The weights as they were before the first ``adapt``."""
