"""What every numpy engine shares (``NumpyTrainable``): the weights, their optimizer and the
dropout generator, on the CPU. Each kind's numpy engine (in its package) extends it with its
reference model.

They run on one BLAS thread, widening to all of them around the output layer's products
(``rnnkit.models.threads``).
"""

from __future__ import annotations

import json
import math

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.numpy.optim import NumpyOptimizer

_RNG = "rng.numpy"


class NumpyTrainable:
    """What every numpy engine shares: the weights, the optimizer with clipping, the dropout
    generator, and their state for checkpoints."""

    name = "numpy"

    def __init__(self, config, params: dict[str, np.ndarray], *, device: str = "cpu", optimizer: str | None = None,
                 clip: float | None = None, seed: int = 0, grad_accum: int = 1, weight_decay: float = 0.0) -> None:
        # ``grad_accum``: a step is the same computed whole; micro-batches save memory on the torch engine only.
        if device not in ("cpu", "auto"):
            raise RnnkitError("the numpy engine runs on the CPU; use --engine torch for --device cuda")
        self.config, self.device, self.weights, self.clip = config, "cpu", params, clip
        self.optimizer = NumpyOptimizer(optimizer, weight_decay) if optimizer else None
        self.rng = np.random.default_rng(seed + 1) if optimizer and config.dropout else None  # dropout masks

    def _update(self, grads: dict[str, np.ndarray], lr: float, scale: float) -> None:
        """One optimizer step on ``scale`` × ``grads``, clipped to the global norm ``clip``."""
        norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values())) * scale
        factor = self.clip / norm if self.clip and norm > self.clip else 1.0
        self.optimizer.apply(self.weights, grads, lr, scale * factor)

    def params(self) -> dict[str, np.ndarray]:
        return self.weights

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        for name, value in params.items():
            self.weights[name][...] = value

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The optimizer's moments and the dropout generator's state (as JSON bytes)."""
        arrays = {f"optimizer.{k}": v for k, v in (self.optimizer.moments if self.optimizer else {}).items()}
        if self.rng is not None:
            arrays[_RNG] = np.frombuffer(json.dumps(self.rng.bit_generator.state).encode(), dtype=np.uint8)
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray], steps: int) -> None:
        self.optimizer.moments = {k.removeprefix("optimizer."): v.copy() for k, v in arrays.items()
                                  if k.startswith("optimizer.")}
        self.optimizer.steps = steps
        if self.rng is not None and _RNG in arrays:
            self.rng.bit_generator.state = json.loads(arrays[_RNG].tobytes())

    def state_to_numpy(self, h: np.ndarray) -> np.ndarray:
        return h

    def state_from_numpy(self, h: np.ndarray) -> np.ndarray:
        return h
