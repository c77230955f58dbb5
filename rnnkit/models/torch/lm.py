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
from rnnkit.models.schema import param_spec


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
    allocates a zeroed gradient of that size; for an 8000-word output layer those passes, each
    through main memory, cost as much as the matrix products. Here the softmax runs in place on the
    logits, the backward pass turns the probabilities into the output error (p − onehot) in place,
    and the row weights are folded into the two products rather than into the (tokens ×
    vocabulary) error. (The saved probabilities are consumed: no second backward through it.)

    Under mixed precision (autocast) the two products run in bf16 or fp16, and the softmax's
    reductions (max, sum, log) in float32: a sum over thousands of words in bf16 loses the loss.
    There the logits are made a block of rows at a time, so that their float32 copy stays in the
    CPU's cache, and the probabilities are kept in the products' precision, the precision the error
    would be cast to anyway. (`benchmarks/fused_softmax.py` measures it against PyTorch's.)
    """

    @staticmethod
    def forward(ctx, states: torch.Tensor, V: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                weights: torch.Tensor):
        device = states.device.type
        compute = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else states.dtype
        reduce = torch.float32 if compute in (torch.float16, torch.bfloat16) else compute
        with torch.autocast(device, enabled=False):
            states_c, V_c = states.to(compute), V.to(compute)  # cast once, not once per block
            bias_c = None if bias is None else bias.to(compute)
            probs = torch.empty(len(states), len(V), dtype=compute, device=states.device)
            nll = torch.empty(len(states), dtype=reduce, device=states.device)
            rows = _block_rows(len(states), len(V), mixed=reduce != compute)
            for a in range(0, len(states), rows):
                b = min(a + rows, len(states))
                block = probs[a:b]
                if bias_c is None:
                    torch.mm(states_c[a:b], V_c.t(), out=block)
                else:
                    torch.addmm(bias_c, states_c[a:b], V_c.t(), out=block)
                logits = block if reduce == compute else block.to(reduce)
                logits -= logits.amax(dim=1, keepdim=True)
                picked = logits.gather(1, targets[a:b, None])
                normaliser = logits.exp_().sum(dim=1, keepdim=True)
                logits /= normaliser
                if logits is not block:
                    block.copy_(logits)
                nll[a:b] = (normaliser.log_() - picked)[:, 0]
        ctx.has_bias, ctx.dtypes = bias is not None, (states.dtype, V.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(states_c, V_c, probs, targets, weights, nll)
        return (nll * weights.to(reduce)).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        states, V, probs, targets, weights, nll = ctx.saved_tensors
        error = probs
        # p − 1 at each target from its float32 loss, exp(−nll) − 1: taken from the bf16 probabilities,
        # a confident target's error would be rounded away (bf16 steps by 1/256 just below 1).
        error[torch.arange(len(targets), device=targets.device), targets] = torch.expm1(-nll).to(error.dtype)
        row_weights = (weights * grad).to(error.dtype)[:, None]
        d_states = (error @ V) * row_weights
        d_V = error.t() @ (states * row_weights)
        d_bias = (row_weights.t() @ error)[0] if ctx.has_bias else None
        states_dtype, V_dtype, bias_dtype = ctx.dtypes
        return (d_states.to(states_dtype), d_V.to(V_dtype), None if d_bias is None else d_bias.to(bias_dtype),
                None, None)


BLOCK_BYTES = 1 << 22  # a block of float32 logits this size stays in cache (L2 and L3)


def _block_rows(positions: int, vocabulary: int, mixed: bool) -> int:
    """Rows of logits made at a time. Blocks pay where the logits are cast to float32; in float32
    itself one large product is faster (benchmarks/fused_softmax.py)."""
    return max(1, BLOCK_BYTES // (4 * vocabulary)) if mixed else max(1, positions)


class TorchLM(nn.Module):
    """The output layer ``V h + c`` (``V`` or ``Eᵀ`` when tied; ``c`` when the cell has it), or a
    subclass's ``adaptive`` softmax, on top of a subclass's ``run``. Weights are created empty;
    ``load_params`` fills them."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.torch_dtype = getattr(torch, config.dtype)
        # What the output layer is made of, from the config (its schema), never from the weights.
        spec = param_spec(config)
        self.tied, self.output_bias = "V" not in spec, "c" in spec

    def weight(self, *shape: int) -> nn.Parameter:
        return nn.Parameter(torch.empty(*shape, dtype=self.torch_dtype))

    def output_matrix(self) -> torch.Tensor:
        return self.E.t() if self.tied else self.V

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy (nats) of the real tokens, and the last state."""
        states, last = self.run(x, h, mask)
        flat = self.project(states.reshape(-1, states.shape[-1]))
        if self.config.cutoffs:
            return -(self.adaptive(flat, y.reshape(-1)).output * mask.reshape(-1).to(flat.dtype)).sum(), last
        bias, weights = self.c if self.output_bias else None, mask.reshape(-1).to(flat.dtype)
        loss = SoftmaxCrossEntropy.apply(flat, self.output_matrix(), bias, y.reshape(-1), weights)
        return loss, last

    def logits(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, C) for inputs ``x`` (B, T) from state ``h``, and the last state. (An adaptive
        softmax gives its log-probabilities: logits already normalised.)"""
        states, last = self.run(x, h)
        return self.head(states), last

    def project(self, states: torch.Tensor) -> torch.Tensor:
        """What the output layer reads: the top states, projected by ``P`` when the config has a projection."""
        return states @ self.P.t() if self.config.projection else states

    def head(self, states: torch.Tensor) -> torch.Tensor:
        """The output layer: logits (B, T, C) of the top layer's states (B, T, width)."""
        states = self.project(states)
        if self.config.cutoffs:
            return self.adaptive.log_prob(states.reshape(-1, states.shape[-1])).reshape(*states.shape[:2], -1)
        flat, V = states.reshape(-1, states.shape[-1]), self.output_matrix()
        # The bias in the product: ``+ c`` afterwards would write a second (positions × vocabulary) array.
        logits = torch.addmm(self.c, flat, V.t()) if self.output_bias else flat @ V.t()
        return logits.reshape(*states.shape[:2], -1)

    def canonical(self, name: str) -> str:
        """The name a weight has in model files and in the numpy engine."""
        return name

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        load_params(self, params)

    def params(self) -> dict[str, np.ndarray]:
        return params_of(self)

    def numpy_params(self) -> dict[str, np.ndarray]:  # the 0.2.0 name
        return self.params()
