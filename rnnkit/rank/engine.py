"""What ranking needs of a dual encoder's engine, whichever runs it (``rnnkit.models.engine``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from rnnkit.models.engine import Trainable
from rnnkit.rank.config import RankerConfig


@runtime_checkable
class RankerEngine(Trainable, Protocol):
    """A dual encoder on one engine; with an optimizer, also a learner."""

    config: RankerConfig

    def encode(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Encodings (B, D) of padded id rows."""

    def score_matrix(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        """cᵢᵀ M rⱼ for every context encoding against every response encoding."""

    def encode_states(self, x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encodings (B, D) and the top layer's states (B, T, width) of padded id rows."""

    def match_scores(self, A: np.ndarray, mask_a: np.ndarray, B: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
        """A reranker's head: the scores (P,) of P pairs of context and response states."""
