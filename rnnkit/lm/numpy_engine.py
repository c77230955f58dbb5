"""The language model on the numpy engine: the reference network (``rnnkit.models.numpy``)
behind the ``Engine`` protocol. Plain SGD without clipping takes the sparse path (only the
batch's columns of ``U`` or ``E`` move); everything else uses dense gradients."""

from __future__ import annotations

import numpy as np

from rnnkit.data.batching import Batch
from rnnkit.lm.config import LMConfig
from rnnkit.models.numpy import build
from rnnkit.models.numpy.engine import NumpyTrainable
from rnnkit.models.threads import one_blas_thread


class NumpyEngine(NumpyTrainable):
    """A language model."""

    prior: dict[str, np.ndarray] | None = None  # the weights before dynamic evaluation's first ``adapt``

    def __init__(self, config: LMConfig, params: dict[str, np.ndarray], **options) -> None:
        super().__init__(config, params, **options)
        self.model = build(config, params)

    def initial_state(self, batch: int) -> np.ndarray:
        return self.model.initial_state(batch)

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return self.model.target_log_probs(x, y)

    def observe(self, x: np.ndarray, y: np.ndarray, h: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with one_blas_thread():
            fwd = self.model.forward(x, y, h)
        return fwd.target_log_probs, fwd.states[-1], fwd.final

    def step(self, tokens: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with one_blas_thread():
            return self.model.step(tokens, h)

    def step_states(self, tokens: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with one_blas_thread():
            return self.model.step_states(tokens, h)

    def adapt(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: np.ndarray | None, lr: float,
              decay: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.prior is None:
            self.prior = {k: v.copy() for k, v in self.weights.items()}
        log_probs, states, final = self.observe(x, y, h)
        with one_blas_thread():
            grads = self.model.backward(x, y, mask, h=h).dense(self.weights)
        scale = lr / max(int(mask.sum()), 1)
        for name, grad in grads.items():
            weight = self.weights[name]
            weight -= scale * grad
            weight += decay * (self.prior[name] - weight)
        return log_probs, states, final

    def restore(self) -> None:
        if self.prior is not None:
            self.load_params(self.prior)
            self.prior = None

    def train_step(self, batch: Batch, lr: float, scale: float,
                   carry: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
        x, y, mask, h = batch.x, batch.y, batch.mask, carry
        with one_blas_thread():
            if self.optimizer.name == "sgd" and not self.clip:
                loss, final = self.model.sgd_update(x, y, mask, lr * scale, h=h, rng=self.rng)
            else:
                result = self.model.backward(x, y, mask, h=h, rng=self.rng)
                self._update(result.dense(self.weights), lr, scale)
                loss, final = result.loss, result.final
        return loss, (None if h is None else final)  # the state from before the update, as torch's

    def loss(self, batch: Batch, carry: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
        with one_blas_thread():
            loss, final = self.model.loss_and_state(batch.x, batch.y, batch.mask, carry)
        return loss, (None if carry is None else final)
