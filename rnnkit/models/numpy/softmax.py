"""Softmax over the last axis, in place where it can be: the output layers' shared arithmetic."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis; ``out=logits`` computes it in place (no vocabulary-sized temporaries)."""
    out = np.subtract(logits, logits.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def softmax_at_targets(logits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of each row of ``logits`` (N, C) in place, and log p at each row's target: the shifted
    logit minus the log-normaliser, so that an underflowed probability still has its log."""
    logits -= logits.max(axis=1, keepdims=True)
    picked = logits[np.arange(len(targets)), targets]
    probs = np.exp(logits, out=logits)
    normaliser = probs.sum(axis=1, keepdims=True)
    probs /= normaliser
    return probs, picked - np.log(normaliser[:, 0])


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax of each row, in place."""
    logits -= logits.max(axis=-1, keepdims=True)
    logits -= np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return logits
