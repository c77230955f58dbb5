"""What every torch language model shares: the output layer, the fused loss, the canonical names.

A subclass builds its layers from the config and defines ``run(x, h, mask) -> (states, last)``.
``forward(x, y, mask, h)`` is the training loss — the method DistributedDataParallel and
``torch.compile`` wrap — and ``logits`` serves scoring and generation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnkit.models.config import LMConfig


def load_params(module: nn.Module, params: dict[str, np.ndarray]) -> None:
    """Copy weights under canonical names (``module.canonical``) into a module's parameters."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.from_numpy(np.ascontiguousarray(params[module.canonical(name)])))
    if hasattr(module, "rnn"):
        module.rnn.flatten_parameters()  # cuDNN wants a recurrence's weights in one buffer


def params_of(module: nn.Module) -> dict[str, np.ndarray]:
    """A module's weights under canonical names, as numpy arrays."""
    return {module.canonical(name): p.detach().cpu().numpy().copy() for name, p in module.named_parameters()}


class SoftmaxCrossEntropy(torch.autograd.Function):
    """Weighted summed cross-entropy of softmax(states · Vᵀ + c) at the targets, fused.

    PyTorch's ``cross_entropy`` makes several passes over the (tokens × vocabulary) logits and
    allocates a zeroed gradient of that size; for an 8000-word output layer those passes cost as
    much as the matrix products. Here the forward pass turns the logits into probabilities in
    place, and the backward pass turns those into the output error (p − onehot) in place, as the
    numpy engine does. (The saved probabilities are consumed: no second backward through it.)

    Under mixed precision (autocast) the two products run in bf16 or fp16, and the softmax's
    reductions (max, sum, log) in float32: a sum over thousands of words in bf16 loses the loss.
    """

    @staticmethod
    def forward(ctx, states: torch.Tensor, V: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                weights: torch.Tensor):
        logits = states @ V.t() if bias is None else torch.addmm(bias, states, V.t())
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        ctx.has_bias = bias is not None
        logits -= logits.max(dim=1, keepdim=True).values
        picked = logits.gather(1, targets[:, None])[:, 0]
        probs = logits.exp_()
        normaliser = probs.sum(dim=1, keepdim=True)
        probs /= normaliser
        ctx.save_for_backward(states, V, probs, targets, weights)
        return ((normaliser[:, 0].log() - picked) * weights).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        states, V, probs, targets, weights = ctx.saved_tensors
        error = probs
        error[torch.arange(len(targets), device=targets.device), targets] -= 1
        error *= (weights * grad)[:, None]
        bias = error.sum(0) if ctx.has_bias else None
        if states.dtype != error.dtype:  # mixed precision: the products in the forward pass's precision
            error = error.to(states.dtype)
        return error @ V.to(error.dtype), (error.t() @ states).to(V.dtype), bias, None, None


class TorchLM(nn.Module):
    """The output layer ``V h + c`` (``V`` or ``Eᵀ`` when tied; ``c`` when the cell has it), or a
    subclass's ``adaptive`` softmax, on top of a subclass's ``run``. Weights are created empty;
    ``load_params`` fills them."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.torch_dtype = getattr(torch, config.dtype)

    def weight(self, *shape: int) -> nn.Parameter:
        return nn.Parameter(torch.empty(*shape, dtype=self.torch_dtype))

    def output_matrix(self) -> torch.Tensor:
        return self.V if hasattr(self, "V") else self.E.t()  # tied: Eᵀ

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy (nats) of the real tokens, and the last state."""
        states, last = self.run(x, h, mask)
        flat = states.reshape(-1, states.shape[-1])
        if hasattr(self, "adaptive"):
            return -(self.adaptive(flat, y.reshape(-1)).output * mask.reshape(-1).to(flat.dtype)).sum(), last
        loss = SoftmaxCrossEntropy.apply(flat, self.output_matrix(), getattr(self, "c", None), y.reshape(-1),
                                         mask.reshape(-1).to(flat.dtype))
        return loss, last

    def logits(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, C) for inputs ``x`` (B, T) from state ``h``, and the last state. (An adaptive
        softmax gives its log-probabilities: logits already normalised.)"""
        states, last = self.run(x, h)
        if hasattr(self, "adaptive"):
            return self.adaptive.log_prob(states.reshape(-1, states.shape[-1])).reshape(*states.shape[:2], -1), last
        logits = states @ self.output_matrix().t()
        return (logits if getattr(self, "c", None) is None else logits + self.c), last

    def canonical(self, name: str) -> str:
        """The name a weight has in model files and in the numpy engine."""
        return name

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        load_params(self, params)

    def params(self) -> dict[str, np.ndarray]:
        return params_of(self)

    def numpy_params(self) -> dict[str, np.ndarray]:  # the 0.2.0 name
        return self.params()
