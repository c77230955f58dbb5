"""The vanilla RNN language model in PyTorch: the fast engine, on CPU and CUDA.

The same model as ``rnnkit.models.numpy.rnn`` — the same weights under the same names (``U``
H×C, ``V`` C×H, ``W`` H×H, no biases; ``E``, ``U2``, ``W2``, … with an embedding and more
layers) — so both engines read and write the same model directories and must agree (the tests
check losses and gradients against the numpy engine).

The recurrence runs in ``torch.rnn_tanh``, the fused kernel behind ``nn.RNN`` (a C++ loop on CPU,
cuDNN on CUDA). Its input-to-hidden product is the identity here, because ``U x_t`` for a one-hot
``x_t`` is a column lookup, done once for the whole batch by ``F.embedding``. Gradients are full
backpropagation through time within a sequence, which is what autograd computes; the seed's
per-output truncation (``--bptt-truncate``) is the numpy engine's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnnkit.errors import RnnkitError
from rnnkit.models.network import Network, layer_names
from rnnkit.models.schema import param_spec
from rnnkit.models.torch.dropout import dropout
from rnnkit.models.torch.lm import TorchLM, word_major


class TorchRNN(TorchLM):
    def __init__(self, config: Network) -> None:
        super().__init__(config)
        if config.activation != "tanh":
            raise RnnkitError("the torch engine runs the seed's tanh RNN; use --engine numpy for relu")
        for name, spec in param_spec(config).items():
            read_by_word = name == "E" or (name == "U" and not config.embedding)
            self.register_parameter(name, word_major(*spec.shape, self.torch_dtype) if read_by_word
                                    else self.weight(*spec.shape))
        if not config.embedding:
            self.register_buffer("identity", torch.eye(config.hidden, dtype=self.torch_dtype), persistent=False)

    def initial_state(self, batch: int) -> torch.Tensor:
        c = self.config
        return torch.zeros(c.layers, batch, c.hidden, dtype=self.W.dtype, device=self.W.device)

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-layer states (B, T, H) for inputs ``x`` (B, T) from state ``h`` (layers, B, H), and the
        last state. Dropout (training only): on the embedding, between layers, on the output."""
        c = self.config
        p = c.dropout if self.training else 0.0
        if c.embedding:
            inputs, first = dropout(F.embedding(x, self.E.t()), p), self.U
        else:
            inputs, first = F.embedding(x, self.U.t()), self.identity  # U[:, x_t] for every position at once
        weights = [first, self.W]
        for k in range(1, c.layers):
            weights += [getattr(self, name) for name in layer_names(k)]
        h = self.initial_state(x.shape[0]) if h is None else h
        states, last = torch.rnn_tanh(inputs, h, weights, False, c.layers, p, self.training, False, True)
        return dropout(states, p), last
