"""What every torch language model shares: the output layer, the fused loss, the canonical names.

A subclass builds its layers from the config and defines ``run(x, h, mask) -> (states, last)``.
``forward(x, y, mask, h)`` is the training loss — the method DistributedDataParallel and
``torch.compile`` wrap — and ``logits`` serves scoring and generation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnkit.models.network import Network
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
    through main memory, cost as much as the matrix products. Here one product makes the logits,
    one softmax pass the probabilities, and the backward pass turns the probabilities into the output
    error (p − onehot) in place; the row weights are folded into the two products rather than into
    the (tokens × vocabulary) error. (The saved probabilities are consumed: no second backward.)

    Under mixed precision (autocast) the products and the probabilities are bf16 or fp16 (the
    softmax sums in float32 inside), and what needs more is taken in float32 from them: 1 − p at
    each target as the sum of the other words' probabilities — from a bf16 p it would be rounded
    away where the model is sure (bf16 steps by 1/256 just below 1) — and the loss from that, or
    from p where p is small. Each bf16 probability is within a factor 1 ± 2⁻⁸ of the exact one, so
    the loss is within about 0.004 nats a token. (`benchmarks/fused_softmax.py` measures it against PyTorch's.)
    """

    @staticmethod
    def forward(ctx, states: torch.Tensor, V: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                weights: torch.Tensor):
        device = states.device.type
        compute = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else states.dtype
        reduce = torch.float32 if compute in (torch.float16, torch.bfloat16) else compute
        with torch.autocast(device, enabled=False):
            states_c, V_c = states.to(compute), V.to(compute)
            logits = states_c @ V_c.t() if bias is None else torch.addmm(bias.to(compute), states_c, V_c.t())
            probs = torch.softmax(logits, dim=1)
            rows = torch.arange(len(targets), device=targets.device)
            picked = probs[rows, targets].to(reduce)
            # 1 − p: where p is near 1, the sum of the other words' probabilities (in float32).
            rest, sure = 1 - picked, picked >= 0.5
            if sure.any():
                rest[sure] = probs[sure].sum(dim=1, dtype=reduce) - picked[sure]
            nll = -torch.where(picked < 0.5, picked.log(), torch.log1p(-rest))
            # A probability below the smallest normal number of its dtype (fp16's 6e-5): its loss from the logits.
            faint = picked < torch.finfo(compute).tiny
            if faint.any():
                some = logits[faint].to(reduce)
                nll[faint] = torch.logsumexp(some, dim=1) - some.gather(1, targets[faint, None])[:, 0]
        ctx.has_bias, ctx.dtypes = bias is not None, (states.dtype, V.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(states_c, V_c, probs, targets, weights, rest)
        return (nll * weights.to(reduce)).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        states, V, probs, targets, weights, rest = ctx.saved_tensors
        error = probs
        error[torch.arange(len(targets), device=targets.device), targets] = (-rest).to(error.dtype)  # p − 1
        row_weights = (weights * grad).to(error.dtype)[:, None]
        d_states = (error @ V) * row_weights
        d_V = error.t() @ (states * row_weights)
        d_bias = (row_weights.t() @ error)[0] if ctx.has_bias else None
        states_dtype, V_dtype, bias_dtype = ctx.dtypes
        return (d_states.to(states_dtype), d_V.to(V_dtype), None if d_bias is None else d_bias.to(bias_dtype),
                None, None)


def word_major(width: int, vocabulary: int, dtype: torch.dtype) -> nn.Parameter:
    """A (width × vocabulary) weight read a word at a time (an embedding ``E``) stored a word to a
    row, its canonical transpose: a lookup's gradient, and a tied output layer's, are made in that
    layout, and a parameter of the other would cost a transposing copy of the vocabulary-sized
    gradient every step (2.4 ms of a 32 ms step at word_language_model's settings)."""
    return nn.Parameter(torch.empty(vocabulary, width, dtype=dtype).t())


class TorchLM(nn.Module):
    """The output layer ``V h + c`` (``V`` or ``Eᵀ`` when tied; ``c`` when the cell has it), or a
    subclass's ``adaptive`` softmax, on top of a subclass's ``run``. Weights are created empty;
    ``load_params`` fills them."""

    def __init__(self, config: Network) -> None:
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
