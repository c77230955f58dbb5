"""What every torch engine shares (``TorchTrainable``): a model module, ``torch.optim``'s
optimizer with the numpy engine's settings, and torch's generators, on CPU or CUDA; for training
on many processes, DistributedDataParallel around the module; mixed precision on request. Each
kind's torch engine (in its package) says its module (``module``) and its loss (``_loss``)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from rnnkit.models.optim import (
    ADAM_BETAS,
    ADAM_EPS,
    RMSPROP_DECAY,
    RMSPROP_EPS,
    check_optimizer,
)
from rnnkit.models.torch.precision import widened

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchTrainable:
    """What every torch engine shares: the module, the optimizer with clipping, the generators,
    and their state for checkpoints (under canonical weight names)."""

    name = "torch"

    @staticmethod
    def module(config: Any) -> torch.nn.Module:
        """The kind's ``nn.Module`` for ``config`` (its weights not yet loaded)."""
        raise NotImplementedError

    def __init__(self, config, params: dict[str, np.ndarray], *, device: str = "cpu", optimizer: str | None = None,
                 clip: float | None = None, seed: int = 0, precision: str = "fp32", grad_accum: int = 1,
                 weight_decay: float = 0.0) -> None:
        self.config, self.device, self.clip = config, torch.device(device), clip
        if optimizer:
            torch.manual_seed(seed)  # dropout masks: the same run twice draws the same ones
        self.model = self.module(config)
        self.model.load_params(params)
        self.model.to(self.device)
        self.forward_module: torch.nn.Module = self.model  # DistributedDataParallel's wrapper after parallel()
        self.optimizer = self._optimizer(optimizer) if optimizer else None
        # Decoupled weight decay (Loshchilov & Hutter's AdamW), on the matrices: not on biases.
        self.weight_decay, self.decayed = weight_decay, [p for p in self.model.parameters() if p.ndim >= 2]
        if not optimizer:
            self.model.eval()
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}")
        self.precision, self.grad_accum = precision, grad_accum
        # fp16's narrow range needs the loss scaled up (and the gradients back down); bf16's does not.
        self.scaler = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None

    def parallel(self) -> None:
        """Average the gradients over the run's processes (its process group is open)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.cuda.current_device()] if self.device.type == "cuda" else None
        # An adaptive softmax's cluster goes unused in a step where no target of this process falls in it.
        unused = bool(getattr(self.model.config, "cutoffs", ()))
        self.forward_module = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=unused)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def _sync(self, last: bool) -> contextlib.AbstractContextManager:
        """Gradients are averaged over the processes once, on a step's last micro-batch."""
        if last or self.forward_module is self.model:
            return contextlib.nullcontext()
        return self.forward_module.no_sync()

    def _optimizer(self, name: str) -> torch.optim.Optimizer:
        check_optimizer(name)
        weights = list(self.model.parameters())
        if name == "sgd":
            return torch.optim.SGD(weights, lr=1.0)
        if name == "rmsprop":
            return torch.optim.RMSprop(weights, lr=1.0, alpha=RMSPROP_DECAY, eps=RMSPROP_EPS)
        return torch.optim.Adam(weights, lr=1.0, betas=ADAM_BETAS, eps=ADAM_EPS)

    def _tensors(self, *arrays: np.ndarray) -> list[torch.Tensor]:
        return [torch.from_numpy(np.ascontiguousarray(a)).to(self.device, non_blocking=True) for a in arrays]

    def _backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def _apply(self, lr: float) -> None:
        """Clip the gradients gathered so far and take one optimizer step at ``lr``."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clipping sees the true gradients
        rate = lr
        if self.clip and isinstance(self.optimizer, torch.optim.SGD):
            # SGD's step is linear in the gradient: the clipped step is the step at a lower rate,
            # without a pass that scales every gradient (clip_grad_norm_'s coefficient).
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None])
            rate = lr * min(1.0, self.clip / (norm.item() + 1e-6))
        elif self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        taken = True
        if self.scaler is None:
            self.optimizer.step()
        else:  # skipped when the gradients overflowed; the scale adapts (falls)
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            taken = self.scaler.get_scale() >= scale
        if self.weight_decay and taken:
            with torch.no_grad():
                torch._foreach_mul_(self.decayed, 1.0 - lr * self.weight_decay)

    def train_step(self, batch, lr: float, scale: float, carry: torch.Tensor | None = None
                   ) -> tuple[float, torch.Tensor | None]:
        """One optimizer step on ``scale`` × the summed loss of ``batch``'s rows, their gradients
        gathered over ``grad_accum`` micro-batches of rows (the memory of one, the step of all);
        the summed loss, and the state to carry into the next batch (when ``carry`` was given)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        micro = min(self.grad_accum, batch.size)
        bounds = np.linspace(0, batch.size, micro + 1).round().astype(int)
        total, lasts = torch.zeros((), dtype=torch.float64, device=self.device), []
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            with self._sync(last=i == micro - 1):
                with self._autocast():
                    loss, last = self._loss(batch.rows(slice(a, b)), None if carry is None else carry[..., a:b, :])
                self._backward(loss * scale)
            total += loss.detach().double()
            if last is not None:
                lasts.append(last.detach())
        self._apply(lr)
        return total.item(), (torch.cat(lasts, dim=-2) if carry is not None else None)

    def loss(self, batch, carry: torch.Tensor | None = None) -> tuple[float, torch.Tensor | None]:
        """The summed loss of ``batch`` without dropout or update, and the state after it (when
        ``carry`` was given), in the training's precision: bf16 autocast gives a language model's
        validation loss within 1e-4 nats of float32's in half the time (benchmarks/eval_precision.py)."""
        self.model.eval()
        with torch.no_grad(), self._autocast():
            loss, last = self._loss(batch, carry, module=self.model)
        return loss.item(), (last if carry is not None else None)

    def _loss(self, batch, carry: torch.Tensor | None, module: torch.nn.Module | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The kind's summed loss of ``batch`` (through ``module``: the training wrapper unless
        given), and its last state."""
        raise NotImplementedError

    def params(self) -> dict[str, np.ndarray]:
        return self.model.params()

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        self.model.load_params(params)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"rng.torch": torch.get_rng_state().numpy()}
        if self.device.type == "cuda":
            arrays["rng.cuda"] = torch.cuda.get_rng_state(self.device).numpy()
        names = {id(p): self.model.canonical(n) for n, p in self.model.named_parameters()}
        for param, state in self.optimizer.state.items():
            for key, value in state.items():
                value = value.detach().cpu().numpy()
                arrays[f"optimizer.{names[id(param)]}.{key}"] = value.reshape(-1) if value.ndim == 0 else value
        if self.scaler is not None:
            arrays["scaler.scale"] = np.array([self.scaler.get_scale()], dtype=np.float64)
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray], steps: int) -> None:
        by_name = {self.model.canonical(n): p for n, p in self.model.named_parameters()}
        for key, value in arrays.items():
            if key.startswith("optimizer."):
                name, field = key.removeprefix("optimizer.").rsplit(".", 1)  # names may hold dots (att.W)
                tensor, param = torch.from_numpy(value.copy()), by_name[name]
                # A moment takes its weight's layout (a word-major E's), as the optimizer makes it.
                self.optimizer.state[param][field] = tensor.reshape(()) if field == "step" \
                    else torch.empty_like(param).copy_(tensor)
        if "scaler.scale" in arrays and self.scaler is not None:
            self.scaler.update(float(arrays["scaler.scale"][0]))
        if "rng.torch" in arrays:
            torch.set_rng_state(torch.from_numpy(arrays["rng.torch"].copy()))
        if "rng.cuda" in arrays and self.device.type == "cuda":
            torch.cuda.set_rng_state(torch.from_numpy(arrays["rng.cuda"].copy()), self.device)

    def state_to_numpy(self, h: torch.Tensor) -> np.ndarray:
        return widened(h).detach().cpu().numpy()  # a state carried under autocast: float32 holds it exactly

    def state_from_numpy(self, h: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(h).to(self.device)
