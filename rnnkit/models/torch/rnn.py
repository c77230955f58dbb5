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

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, C) for inputs ``x`` (B, T) from state ``h`` (1, B, H), and the last state."""
        inputs = F.embedding(x, self.U.t())  # U[:, x_t] for every position at once
        h = self.initial_state(x.shape[0]) if h is None else h
        states, last = torch.rnn_tanh(inputs, h, [self.identity, self.W], False, 1, 0.0, self.training, False, True)
        return states @ self.V.t(), last

    def loss(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
             h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy (nats) of the real tokens, and the last state."""
        logits, last = self(x, h)
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        return (losses * mask.reshape(-1).to(losses.dtype)).sum(), last
