"""The torch engines behind ``rnnkit.models.engine``: a model module, ``torch.optim``'s optimizer
with the numpy engine's settings, and torch's generators, on CPU or CUDA; for training on many
processes, DistributedDataParallel around the module; on CUDA, mixed precision on request."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from rnnkit.data.batching import Batch, PairBatch, Seq2SeqBatch
from rnnkit.models.config import LMConfig, RankerConfig, Seq2SeqConfig
from rnnkit.models.numpy.seq2seq import Encoded, rows_of, selected
from rnnkit.models.numpy.threads import one_blas_thread
from rnnkit.models.optim import (
    ADAM_BETAS,
    ADAM_EPS,
    RMSPROP_DECAY,
    RMSPROP_EPS,
    check_optimizer,
)
from rnnkit.models.torch import build
from rnnkit.models.torch.precision import widened

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchTrainable:
    """What every torch engine shares: the module, the optimizer with clipping, the generators,
    and their state for checkpoints (under canonical weight names)."""

    name = "torch"

    def __init__(self, config, params: dict[str, np.ndarray], *, device: str = "cpu", optimizer: str | None = None,
                 clip: float | None = None, seed: int = 0, precision: str = "fp32", grad_accum: int = 1,
                 weight_decay: float = 0.0) -> None:
        self.config, self.device, self.clip = config, torch.device(device), clip
        if optimizer:
            torch.manual_seed(seed)  # dropout masks: the same run twice draws the same ones
        self.model = build(config, params, device=self.device)
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


class TorchEngine(TorchTrainable):
    """A language model."""

    config: LMConfig
    prior: list[torch.Tensor] | None = None  # the weights before dynamic evaluation's first ``adapt``

    def initial_state(self, batch: int) -> torch.Tensor:
        return self.model.initial_state(batch)

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.observe(x, y)[0]

    def observe(self, x: np.ndarray, y: np.ndarray, h: torch.Tensor | None = None
                ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        x, y = self._tensors(x, y)
        with torch.no_grad():
            states, last = self.model.run(x, h)
            logits = self.model.head(states)
            picked = logits.gather(2, y[:, :, None])[:, :, 0]
            # log Σ exp, in place: one (B, T, C) array in all, where logsumexp would write another.
            top = logits.amax(dim=-1, keepdim=True)
            normaliser = logits.sub_(top).exp_().sum(dim=-1).log_() + top[..., 0]
            return (picked - normaliser).cpu().numpy(), states.cpu().numpy(), last

    def adapt(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: torch.Tensor | None, lr: float,
              decay: float) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        weights = list(self.model.parameters())
        if self.prior is None:
            self.prior = [w.detach().clone() for w in weights]
        x, y, mask = self._tensors(x, y, mask)
        self.model.eval()  # no dropout: the text is read as in evaluation
        states, last = self.model.run(x, None if h is None else h.detach())
        log_probs = torch.log_softmax(self.model.head(states).float(), dim=-1).gather(2, y[:, :, None])[:, :, 0]
        loss = -(log_probs * mask).sum() / mask.sum().clamp(min=1)
        grads = torch.autograd.grad(loss, weights)
        with torch.no_grad():
            for weight, grad, prior in zip(weights, grads, self.prior):
                weight.sub_(grad, alpha=lr).add_(prior - weight, alpha=decay)
        return log_probs.detach().cpu().numpy(), states.detach().cpu().numpy(), last.detach()

    def restore(self) -> None:
        if self.prior is not None:
            with torch.no_grad():
                for weight, prior in zip(self.model.parameters(), self.prior):
                    weight.copy_(prior)
            self.prior = None

    def step(self, tokens: np.ndarray, h: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        probs, _, h = self.step_states(tokens, h)
        return probs, h

    def step_states(self, tokens: np.ndarray, h: torch.Tensor) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        (x,) = self._tensors(tokens[:, None])
        with torch.no_grad():
            states, h = self.model.run(x, h)
            logits = self.model.head(states)
            # torch's fused softmax reads each row once and keeps it in cache: faster than in-place passes.
            return torch.softmax(logits[:, 0], dim=-1).cpu().numpy(), states[:, 0].cpu().numpy(), h

    def _loss(self, batch: Batch, carry: torch.Tensor | None, module: torch.nn.Module | None = None):
        x, y, mask = self._tensors(batch.x, batch.y, batch.mask)
        return (module or self.forward_module)(x, y, mask, carry)


class TorchRankerEngine(TorchTrainable):
    """A dual encoder."""

    config: RankerConfig

    def _loss(self, batch: PairBatch, carry: None, module: torch.nn.Module | None = None):
        tensors = self._tensors(batch.contexts, batch.context_mask, batch.responses, batch.response_mask)
        labels = None if batch.labels is None else self._tensors(batch.labels.astype(self.config.dtype))[0]
        return (module or self.forward_module)(*tensors, labels), None

    def encode(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x, mask = self._tensors(x, mask)
        self.model.eval()
        with torch.no_grad():
            return self.model.encode(x, mask).cpu().numpy()

    def score_matrix(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        c_, r_ = self._tensors(c, r)
        with torch.no_grad():
            cM = c_ @ self.model.M
            if self.device.type == "cpu":
                # Against a repository (1 × D by D × 100k) the product is one pass over r, which numpy's
                # BLAS makes faster than torch's CPU matmul; on one thread, because idle OpenBLAS threads
                # spin and slow torch's next operations (benchmarks/chat_latency.py).
                with one_blas_thread():
                    return cM.numpy() @ np.asarray(r, dtype=cM.numpy().dtype).T
            return (cM @ r_.t()).cpu().numpy()

    def encode_states(self, x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, mask = self._tensors(x, mask)
        self.model.eval()
        with torch.no_grad():
            return tuple(t.cpu().numpy() for t in self.model.encode_states(x, mask))

    def match_scores(self, A: np.ndarray, mask_a: np.ndarray, B: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
        self.model.eval()
        with torch.no_grad():
            return self.model.match(*self._tensors(A, mask_a, B, mask_b)).cpu().numpy()


class TorchSeq2SeqEngine(TorchTrainable):
    """An encoder–decoder. Decoding keeps its state and the encoded source as tensors on the device."""

    config: Seq2SeqConfig

    def _loss(self, batch: Seq2SeqBatch, carry: None, module: torch.nn.Module | None = None):
        return (module or self.forward_module)(*self._tensors(*batch.arrays)), None

    def encode(self, x: np.ndarray, mask: np.ndarray) -> Encoded:
        x, mask = self._tensors(x, mask)
        self.model.eval()
        with torch.no_grad():
            annotations, state = self.model.encode(x, mask)
            return Encoded(annotations, mask, state, keys=self.model.keys(annotations))

    def step(self, tokens: np.ndarray, state: Any, encoded: Encoded, allowed: np.ndarray | None = None):
        (x,) = self._tensors(tokens[:, None])
        mask = encoded.mask if allowed is None else encoded.mask & self._tensors(allowed)[0]
        with torch.no_grad():
            combined, weights, state = self.model.decode(x, state, encoded.annotations, mask, encoded.keys)
            log_probs = torch.log_softmax(self.model.logits(combined[:, 0]), dim=-1).cpu().numpy()
        attended = weights is not None and self.config.attention != "none"
        return log_probs, state, weights[:, 0].cpu().numpy() if attended else None

    def select(self, state: Any, encoded: Encoded, rows: np.ndarray) -> tuple[Any, Encoded]:
        (index,) = self._tensors(rows)
        return rows_of(state, index), selected(encoded, index)
