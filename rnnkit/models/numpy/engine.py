"""The numpy engine behind ``rnnkit.models.engine.Engine``: the reference model, its optimizer,
and the dropout generator, on the CPU.

It runs on one BLAS thread, widening to all of them around the output layer's products
(``rnnkit.models.numpy.threads``). Plain SGD without clipping takes the sparse path (only the
batch's columns of ``U`` or ``E`` move); the other optimizers use dense gradients.
"""

from __future__ import annotations

import json
import math

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.config import LMConfig
from rnnkit.models.numpy import build
from rnnkit.models.numpy.optim import NumpyOptimizer
from rnnkit.models.numpy.threads import one_blas_thread

_RNG = "rng.numpy"


class NumpyEngine:
    name = "numpy"

    def __init__(self, config: LMConfig, params: dict[str, np.ndarray], *, device: str = "cpu",
                 optimizer: str | None = None, clip: float | None = None, seed: int = 0) -> None:
        if device not in ("cpu", "auto"):
            raise RnnkitError("the numpy engine runs on the CPU; use --engine torch for --device cuda")
        self.config, self.device = config, "cpu"
        self.model = build(config, params)
        self.optimizer = NumpyOptimizer(optimizer) if optimizer else None
        self.clip = clip
        self.rng = np.random.default_rng(seed + 1) if optimizer and config.dropout else None  # dropout masks

    # ------------------------------------------------------------------ use

    def initial_state(self, batch: int) -> np.ndarray:
        return self.model.initial_state(batch)

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return self.model.target_log_probs(x, y)

    def step(self, tokens: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with one_blas_thread():
            return self.model.step(tokens, h)

    # ------------------------------------------------------------------ training

    def train_step(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, lr: float, scale: float,
                   h: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
        model = self.model
        with one_blas_thread():
            if self.optimizer.name == "sgd" and not self.clip:
                loss, final = model.sgd_update(x, y, mask, lr * scale, h=h, rng=self.rng)
            else:
                result = model.backward(x, y, mask, h=h, rng=self.rng)
                grads = result.dense(model.params)
                norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values())) * scale
                factor = self.clip / norm if self.clip and norm > self.clip else 1.0
                self.optimizer.apply(model.params, grads, lr, scale * factor)
                loss, final = result.loss, result.final
        return loss, (None if h is None else final)  # the state from before the update, as torch's

    def loss(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray,
             h: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
        with one_blas_thread():
            loss, final = self.model.loss_and_state(x, y, mask, h)
        return loss, (None if h is None else final)

    def params(self) -> dict[str, np.ndarray]:
        return self.model.params

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        for name, value in params.items():
            self.model.params[name][...] = value

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
