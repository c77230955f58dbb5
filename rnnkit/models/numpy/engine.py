"""The numpy engines behind ``rnnkit.models.engine``: the reference models, their optimizer and
the dropout generator, on the CPU.

They run on one BLAS thread, widening to all of them around the output layer's products
(``rnnkit.models.numpy.threads``). The language model's plain SGD without clipping takes the
sparse path (only the batch's columns of ``U`` or ``E`` move); everything else uses dense gradients.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np

from rnnkit.data.batching import Batch, PairBatch, Seq2SeqBatch
from rnnkit.errors import RnnkitError
from rnnkit.models.config import LMConfig, RankerConfig, Seq2SeqConfig
from rnnkit.models.numpy import build
from rnnkit.models.numpy.optim import NumpyOptimizer
from rnnkit.models.numpy.ranker import NumpyDualEncoder
from rnnkit.models.numpy.seq2seq import Encoded, NumpySeq2Seq, rows_of, selected
from rnnkit.models.numpy.threads import one_blas_thread

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


class NumpyRankerEngine(NumpyTrainable):
    """A dual encoder."""

    def __init__(self, config: RankerConfig, params: dict[str, np.ndarray], **options) -> None:
        super().__init__(config, params, **options)
        self.model = NumpyDualEncoder(config, params)

    def encode(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return self.model.encode(x, mask)[0]

    def score_matrix(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        return self.model.score_matrix(c, r)

    def encode_states(self, x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with one_blas_thread():
            vectors, encoding = self.model.encode(x, mask)
        return vectors, encoding.forward.states[-1]

    def match_scores(self, A: np.ndarray, mask_a: np.ndarray, B: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return self.model.match_scores(A, mask_a, B, mask_b)

    def train_step(self, batch: PairBatch, lr: float, scale: float, carry: None = None) -> tuple[float, None]:
        with one_blas_thread():
            loss, grads = self.model.loss_and_grads(batch, self.rng)
            self._update(grads, lr, scale)
        return loss, None

    def loss(self, batch: PairBatch, carry: None = None) -> tuple[float, None]:
        with one_blas_thread():
            return self.model.loss(batch), None


class NumpySeq2SeqEngine(NumpyTrainable):
    """An encoder–decoder."""

    def __init__(self, config: Seq2SeqConfig, params: dict[str, np.ndarray], **options) -> None:
        super().__init__(config, params, **options)
        self.model = NumpySeq2Seq(config, params)

    def train_step(self, batch: Seq2SeqBatch, lr: float, scale: float, carry: None = None) -> tuple[float, None]:
        with one_blas_thread():
            loss, grads = self.model.loss_and_grads(*batch.arrays, rng=self.rng)
            self._update(grads, lr, scale)
        return loss, None

    def loss(self, batch: Seq2SeqBatch, carry: None = None) -> tuple[float, None]:
        with one_blas_thread():
            return self.model.loss(*batch.arrays), None

    def encode(self, x: np.ndarray, mask: np.ndarray) -> Encoded:
        with one_blas_thread():
            return self.model.encode(x, mask)

    def step(self, tokens: np.ndarray, state: Any, encoded: Encoded, allowed: np.ndarray | None = None):
        if allowed is not None:
            encoded = replace(encoded, mask=encoded.mask & allowed)
        with one_blas_thread():
            return self.model.step(tokens, state, encoded)

    def select(self, state: Any, encoded: Encoded, rows: np.ndarray) -> tuple[Any, Encoded]:
        return rows_of(state, rows), selected(encoded, rows)
