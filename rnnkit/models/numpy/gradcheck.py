"""Numerical gradient check (the seed's): central differences against backpropagation, per element."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np


def relative_error(a: float, b: float, floor: float = 0.0) -> float:
    """|a - b| / (|a| + |b|), and 0 when both are 0 (a parameter the loss does not touch); with a
    ``floor`` on the denominator, gradients near 0 (where rounding dominates) count absolutely."""
    denominator = max(abs(a) + abs(b), floor)
    return abs(a - b) / denominator if denominator else 0.0


def check_gradients(params: dict[str, np.ndarray], loss: Callable[[], float], grads: dict[str, np.ndarray], *,
                    h: float = 1e-3, names: Iterable[str] | None = None, floor: float = 0.0) -> dict[str, float]:
    """The largest relative error between (L(θ+h) - L(θ-h)) / 2h and ``grads``, for each parameter:
    ``loss()`` computes L from ``params``, which are nudged in place one element at a time."""
    worst: dict[str, float] = {}
    for name in names or params:
        parameter, gradient = params[name], grads[name]
        errors = [0.0]
        for ix in np.ndindex(*parameter.shape):
            original = parameter[ix]
            parameter[ix] = original + h
            plus = loss()
            parameter[ix] = original - h
            minus = loss()
            parameter[ix] = original
            errors.append(relative_error(float(gradient[ix]), (plus - minus) / (2 * h), floor))
        worst[name] = max(errors)
    return worst


def gradient_check(model, x: np.ndarray, y: np.ndarray, mask: np.ndarray, *, h: float = 1e-3,
                   names: Iterable[str] | None = None, state: np.ndarray | None = None) -> dict[str, float]:
    """``check_gradients`` for a language model's summed loss on a batch, from the initial ``state``
    (zero when None). ``model`` needs ``params``, ``loss`` and ``loss_and_grads``; use float64."""
    _, grads = model.loss_and_grads(x, y, mask, h=state)
    return check_gradients(model.params, lambda: model.loss(x, y, mask, state), grads, h=h, names=names)
