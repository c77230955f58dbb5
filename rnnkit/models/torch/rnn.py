"""The vanilla RNN language model in PyTorch: the fast engine, on CPU and CUDA.

The same model as ``rnnkit.models.numpy.rnn`` — the same weights under the same names (``U``
H×C, ``V`` C×H, ``W`` H×H, no biases) — so both engines read and write the same model
directories and must agree (the tests check losses and gradients against the numpy engine).

The recurrence runs in ``torch.rnn_tanh``, the fused kernel behind ``nn.RNN`` (a C++ loop on CPU,
cuDNN on CUDA). Its input-to-hidden product is the identity here, because ``U x_t`` for a one-hot
``x_t`` is a column lookup, done once for the whole batch by ``F.embedding``. Gradients are full
backpropagation through time within a sequence, which is what autograd computes; the seed's
per-output truncation (``--bptt-truncate``) is the numpy engine's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SoftmaxCrossEntropy(torch.autograd.Function):
    """Weighted summed cross-entropy of softmax(states · Vᵀ) at the targets, fused.

    PyTorch's ``cross_entropy`` makes several passes over the (tokens × vocabulary) logits and
    allocates a zeroed gradient of that size; for an 8000-word output layer those passes cost as
    much as the matrix products. Here the forward pass turns the logits into probabilities in
    place, and the backward pass turns those into the output error (p − onehot) in place, as the
    numpy engine does. (The saved probabilities are consumed: no second backward through it.)
    """

    @staticmethod
    def forward(ctx, states: torch.Tensor, V: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
        logits = states @ V.t()
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
        return error @ V, error.t() @ states, None, None


class TorchRNN(nn.Module):
    cell = "rnn"

    def __init__(self, vocab_size: int, hidden: int, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.U = nn.Parameter(torch.empty(hidden, vocab_size, dtype=dtype))
        self.V = nn.Parameter(torch.empty(vocab_size, hidden, dtype=dtype))
        self.W = nn.Parameter(torch.empty(hidden, hidden, dtype=dtype))
        self.register_buffer("identity", torch.eye(hidden, dtype=dtype), persistent=False)

    @classmethod
    def from_numpy(cls, params: dict[str, np.ndarray], device: str | torch.device = "cpu") -> TorchRNN:
        U = params["U"]
        model = cls(U.shape[1], U.shape[0], dtype=getattr(torch, str(U.dtype)))
        model.load_numpy(params)
        return model.to(device)

    def load_numpy(self, params: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for name in ("U", "V", "W"):
                getattr(self, name).copy_(torch.from_numpy(np.ascontiguousarray(params[name])))

    def numpy_params(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).detach().cpu().numpy().copy() for name in ("U", "V", "W")}

    @property
    def hidden(self) -> int:
        return self.W.shape[0]

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(1, batch, self.hidden, dtype=self.W.dtype, device=self.W.device)

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states (B, T, H) for inputs ``x`` (B, T) from state ``h`` (1, B, H), and the last state."""
        inputs = F.embedding(x, self.U.t())  # U[:, x_t] for every position at once
        h = self.initial_state(x.shape[0]) if h is None else h
        return torch.rnn_tanh(inputs, h, [self.identity, self.W], False, 1, 0.0, self.training, False, True)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, C) for inputs ``x`` (B, T) from state ``h`` (1, B, H), and the last state."""
        states, last = self.run(x, h)
        return states @ self.V.t(), last

    def loss(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
             h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy (nats) of the real tokens, and the last state."""
        states, last = self.run(x, h)
        flat = states.reshape(-1, states.shape[-1])
        return SoftmaxCrossEntropy.apply(flat, self.V, y.reshape(-1), mask.reshape(-1).to(flat.dtype)), last
