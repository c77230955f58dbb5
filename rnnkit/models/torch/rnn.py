"""The vanilla RNN language model in PyTorch: the fast engine, on CPU and CUDA.

The same model as ``rnnkit.models.numpy.rnn`` — the same weights under the same names (``U``
H×C, ``V`` C×H, ``W`` H×H, no biases; ``E``, ``U2``, ``W2``, … with an embedding and more
layers) — so both engines read and write the same model
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

from rnnkit.models.numpy.rnn import layer_names


class SoftmaxCrossEntropy(torch.autograd.Function):
    """Weighted summed cross-entropy of softmax(states · Vᵀ) at the targets, fused.

    PyTorch's ``cross_entropy`` makes several passes over the (tokens × vocabulary) logits and
    allocates a zeroed gradient of that size; for an 8000-word output layer those passes cost as
    much as the matrix products. Here the forward pass turns the logits into probabilities in
    place, and the backward pass turns those into the output error (p − onehot) in place, as the
    numpy engine does. (The saved probabilities are consumed: no second backward through it.)
    """

    @staticmethod
    def forward(ctx, states: torch.Tensor, V: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                weights: torch.Tensor):
        logits = states @ V.t() if bias is None else torch.addmm(bias, states, V.t())
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
        return error @ V, error.t() @ states, (error.sum(0) if ctx.has_bias else None), None, None


class LanguageModelHead(nn.Module):
    """What every torch language model shares: the output layer on top of ``run``'s states.
    A subclass defines ``run(x, h) -> (states, last state)``."""

    def output_matrix(self) -> torch.Tensor:
        return self.V if hasattr(self, "V") else self.E.t()  # tied: Eᵀ

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, C) for inputs ``x`` (B, T) from state ``h``, and the last state."""
        states, last = self.run(x, h)
        logits = states @ self.output_matrix().t()
        return (logits if getattr(self, "c", None) is None else logits + self.c), last

    def loss(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
             h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy (nats) of the real tokens, and the last state."""
        states, last = self.run(x, h, mask)
        flat = states.reshape(-1, states.shape[-1])
        loss = SoftmaxCrossEntropy.apply(flat, self.output_matrix(), getattr(self, "c", None), y.reshape(-1),
                                         mask.reshape(-1).to(flat.dtype))
        return loss, last

    def load_numpy(self, params: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.copy_(torch.from_numpy(np.ascontiguousarray(params[self.canonical(name)])))

    def numpy_params(self) -> dict[str, np.ndarray]:
        return {self.canonical(name): param.detach().cpu().numpy().copy() for name, param in self.named_parameters()}

    def canonical(self, name: str) -> str:
        """The name a weight has in model files and in the numpy engine."""
        return name


class TorchRNN(LanguageModelHead):
    cell = "rnn"

    def __init__(self, vocab_size: int, hidden: int, *, layers: int = 1, embedding: int | None = None,
                 dropout: float = 0.0, tie: bool = False, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        n_in = embedding or vocab_size
        self.U = nn.Parameter(torch.empty(hidden, n_in, dtype=dtype))
        if not tie:
            self.V = nn.Parameter(torch.empty(vocab_size, hidden, dtype=dtype))
        self.W = nn.Parameter(torch.empty(hidden, hidden, dtype=dtype))
        if embedding:
            self.E = nn.Parameter(torch.empty(embedding, vocab_size, dtype=dtype))
        for k in range(1, layers):
            u, w = layer_names(k)
            self.register_parameter(u, nn.Parameter(torch.empty(hidden, hidden, dtype=dtype)))
            self.register_parameter(w, nn.Parameter(torch.empty(hidden, hidden, dtype=dtype)))
        self.layers, self.embedding, self.dropout = layers, embedding, dropout
        if not embedding:
            self.register_buffer("identity", torch.eye(hidden, dtype=dtype), persistent=False)

    @classmethod
    def from_numpy(cls, params: dict[str, np.ndarray], device: str | torch.device = "cpu",
                   dropout: float = 0.0) -> TorchRNN:
        U = params["U"]
        layers = 1 + sum(1 for k in params if k.startswith("W") and k != "W")
        embedding = params["E"].shape[0] if "E" in params else None
        vocab_size = params["E" if embedding else "U"].shape[1]
        model = cls(vocab_size, U.shape[0], layers=layers, embedding=embedding, dropout=dropout,
                    tie="V" not in params, dtype=getattr(torch, str(U.dtype)))
        model.load_numpy(params)
        return model.to(device)

    @property
    def hidden(self) -> int:
        return self.W.shape[0]

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(self.layers, batch, self.hidden, dtype=self.W.dtype, device=self.W.device)

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-layer states (B, T, H) for inputs ``x`` (B, T) from state ``h`` (layers, B, H), and the
        last state. Dropout (training only): on the embedding, between layers, on the output."""
        p = self.dropout if self.training else 0.0
        if self.embedding:
            inputs, first = F.dropout(F.embedding(x, self.E.t()), p), self.U
        else:
            inputs, first = F.embedding(x, self.U.t()), self.identity  # U[:, x_t] for every position at once
        weights = [first, self.W]
        for k in range(1, self.layers):
            weights += [getattr(self, name) for name in layer_names(k)]
        h = self.initial_state(x.shape[0]) if h is None else h
        states, last = torch.rnn_tanh(inputs, h, weights, False, self.layers, p, self.training, False, True)
        return F.dropout(states, p), last
