"""The optimizers of ``rnnkit.models.optim`` written out for the numpy engine."""

from __future__ import annotations

import numpy as np

from rnnkit.models.optim import (
    ADAM_BETAS,
    ADAM_EPS,
    RMSPROP_DECAY,
    RMSPROP_EPS,
    check_optimizer,
)


class NumpyOptimizer:
    """Updates weights in place from their gradients; its moments are named ``{weight}.m`` / ``.v``."""

    def __init__(self, name: str, weight_decay: float = 0.0) -> None:
        check_optimizer(name)
        self.name, self.weight_decay = name, weight_decay
        self.moments: dict[str, np.ndarray] = {}
        self.steps = 0

    def apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float, scale: float) -> None:
        """One step on ``scale`` × the gradients (``grads`` are scaled in place)."""
        self.steps += 1
        for name, grad in grads.items():
            grad *= scale
            param = params[name]
            if self.name == "sgd":
                param -= lr * grad
            elif self.name == "rmsprop":
                v = self.moments.setdefault(f"{name}.v", np.zeros_like(param))
                v *= RMSPROP_DECAY
                v += (1 - RMSPROP_DECAY) * grad * grad
                param -= lr * grad / (np.sqrt(v) + RMSPROP_EPS)
            else:
                (b1, b2), t = ADAM_BETAS, self.steps
                m = self.moments.setdefault(f"{name}.m", np.zeros_like(param))
                v = self.moments.setdefault(f"{name}.v", np.zeros_like(param))
                m *= b1
                m += (1 - b1) * grad
                v *= b2
                v += (1 - b2) * grad * grad
                param -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + ADAM_EPS)
            if self.weight_decay and param.ndim >= 2:
                param *= 1.0 - lr * self.weight_decay
