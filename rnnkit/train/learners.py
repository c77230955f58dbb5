"""One training interface over the two engines: take a step, measure a loss, save and restore.

A learner owns a model and its optimizer. ``step`` minimises ``scale`` × the batch's summed
loss (the loop chooses the scale: per sentence or per token) and returns the summed loss and the
last hidden state (stream mode carries it into the next batch). Optimizers: SGD, RMSprop (decay
0.9, as the tutorial's GRU code) and Adam; gradients can be clipped to a global norm.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.numpy import NumpyRNN, numpy_model

OPTIMIZERS = ("sgd", "rmsprop", "adam")
RMSPROP_DECAY, RMSPROP_EPS = 0.9, 1e-6
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def _clip_factor(norm: float, clip: float | None) -> float:
    return clip / norm if clip and norm > clip else 1.0


class NumpyLearner:
    """The numpy engine. Plain SGD without clipping takes the sparse path (only the batch's columns
    of ``U`` move); the other optimizers use dense gradients."""

    def __init__(self, model: NumpyRNN, optimizer: str, clip: float | None, seed: int = 0) -> None:
        self.model, self.optimizer, self.clip = model, optimizer, clip
        self.moments: dict[str, np.ndarray] = {}
        self.steps = 0
        self.rng = np.random.default_rng(seed + 1) if model.dropout else None  # dropout masks

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.model.params

    def initial_state(self, batch: int) -> np.ndarray:
        return self.model.initial_state(batch)

    def step(self, x, y, mask, lr: float, scale: float, h=None) -> tuple[float, Any]:
        model = self.model
        if self.optimizer == "sgd" and not self.clip:
            loss = model.sgd_update(x, y, mask, lr * scale, h=h, rng=self.rng)
        else:
            loss, grads = model.loss_and_grads(x, y, mask, h=h, rng=self.rng)
            norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values())) * scale
            self._apply(grads, lr, scale * _clip_factor(norm, self.clip))
        return loss, (None if h is None else model.final_state)  # from before the update, as torch's

    def _apply(self, grads: dict[str, np.ndarray], lr: float, scale: float) -> None:
        self.steps += 1
        for name, grad in grads.items():
            grad *= scale
            param = self.model.params[name]
            if self.optimizer == "sgd":
                param -= lr * grad
            elif self.optimizer == "rmsprop":
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

    def loss(self, x, y, mask, h=None) -> tuple[float, Any]:
        loss = self.model.loss(x, y, mask, h)
        return loss, (None if h is None else self.model.final_state)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {f"optimizer.{k}": v for k, v in self.moments.items()}

    def load_state_arrays(self, arrays: dict[str, np.ndarray], steps: int) -> None:
        self.moments = {k.removeprefix("optimizer."): v.copy() for k, v in arrays.items() if k.startswith("optimizer.")}
        self.steps = steps

    def rng_state(self) -> Any:
        return self.rng.bit_generator.state if self.rng is not None else None

    def load_rng_state(self, state: Any, arrays: dict[str, np.ndarray]) -> None:
        if self.rng is not None and state is not None:
            self.rng.bit_generator.state = state

    def numpy_params(self) -> dict[str, np.ndarray]:
        return self.model.params

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        for name, value in params.items():
            self.model.params[name][...] = value


class TorchLearner:
    """The PyTorch engine, on CPU or CUDA."""

    def __init__(self, params: dict[str, np.ndarray], optimizer: str, clip: float | None, device: str,
                 dropout: float = 0.0, seed: int = 0) -> None:
        import torch

        from rnnkit.models.torch.gated import torch_model

        self.torch = torch
        self.device = torch.device(device)
        torch.manual_seed(seed)  # dropout masks: the same run twice draws the same ones
        self.model = torch_model(params, self.device, dropout=dropout)
        self.clip = clip
        self.steps = 0
        weights = list(self.model.parameters())
        if optimizer == "sgd":
            self.optimizer = torch.optim.SGD(weights, lr=1.0)
        elif optimizer == "rmsprop":
            self.optimizer = torch.optim.RMSprop(weights, lr=1.0, alpha=RMSPROP_DECAY, eps=RMSPROP_EPS)
        else:
            self.optimizer = torch.optim.Adam(weights, lr=1.0, betas=ADAM_BETAS, eps=ADAM_EPS)

    def _tensors(self, *arrays):
        return [self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device, non_blocking=True) for a in arrays]

    def initial_state(self, batch: int):
        return self.model.initial_state(batch)

    def step(self, x, y, mask, lr: float, scale: float, h=None) -> tuple[float, Any]:
        torch = self.torch
        x, y, mask = self._tensors(x, y, mask)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss, last = self.model.loss(x, y, mask, h)
        (loss * scale).backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.steps += 1
        return loss.item(), (None if h is None else last.detach())

    def loss(self, x, y, mask, h=None) -> tuple[float, Any]:
        x, y, mask = self._tensors(x, y, mask)
        self.model.eval()
        with self.torch.no_grad():
            loss, last = self.model.loss(x, y, mask, h)
        return loss.item(), (None if h is None else last)

    def state_arrays(self) -> dict[str, np.ndarray]:
        torch = self.torch
        arrays = {"rng.torch": torch.get_rng_state().numpy()}
        if self.device.type == "cuda":
            arrays["rng.cuda"] = torch.cuda.get_rng_state().numpy()
        names = {id(p): self.model.canonical(n) for n, p in self.model.named_parameters()}  # no dots in names
        for param, state in self.optimizer.state.items():
            for key, value in state.items():
                arrays[f"optimizer.{names[id(param)]}.{key}"] = value.detach().cpu().numpy().reshape(-1) \
                    if value.ndim == 0 else value.detach().cpu().numpy()
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray], steps: int) -> None:
        torch = self.torch
        by_name = {self.model.canonical(n): p for n, p in self.model.named_parameters()}
        for key, value in arrays.items():
            if not key.startswith("optimizer."):
                continue
            _, name, field = key.split(".", 2)
            tensor = torch.from_numpy(value.copy())
            if field == "step":
                tensor = tensor.reshape(())
            self.optimizer.state[by_name[name]][field] = tensor.to(self.device) if field != "step" else tensor
        self.steps = steps

    def numpy_params(self) -> dict[str, np.ndarray]:
        return self.model.numpy_params()

    def rng_state(self) -> Any:
        return None  # torch's generators are saved as arrays (see state_arrays)

    def load_rng_state(self, state: Any, arrays: dict[str, np.ndarray]) -> None:
        torch = self.torch
        if "rng.torch" in arrays:
            torch.set_rng_state(torch.from_numpy(arrays["rng.torch"].copy()))
        if "rng.cuda" in arrays and torch.cuda.is_available():
            torch.cuda.set_rng_state(torch.from_numpy(arrays["rng.cuda"].copy()))

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        self.model.load_numpy(params)


def make_learner(engine: str, params: dict[str, np.ndarray], *, optimizer: str, clip: float | None, device: str,
                 bptt_truncate: int, dropout: float = 0.0, seed: int = 0):
    if optimizer not in OPTIMIZERS:
        raise RnnkitError(f"unknown optimizer {optimizer!r}; use sgd, rmsprop or adam")
    if engine == "numpy":
        if device not in ("cpu", "auto"):
            raise RnnkitError("the numpy engine runs on the CPU; use --engine torch for --device cuda")
        return NumpyLearner(numpy_model(params, bptt_truncate, dropout), optimizer, clip, seed)
    return TorchLearner(params, optimizer, clip, device, dropout, seed)
