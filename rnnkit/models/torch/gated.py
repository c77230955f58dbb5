"""GRU and LSTM language models in PyTorch: the same weights as ``rnnkit.models.numpy.gated``.

The recurrence is ``nn.GRU`` / ``nn.LSTM``, whose gates are exactly the numpy engine's, so the
fused kernels run (a C++ loop on CPU, cuDNN on CUDA, with its weights kept in one flat buffer).
Only the names differ: ``U``/``W``/``bu``/``bw`` here are PyTorch's ``weight_ih_l0`` /
``weight_hh_l0`` / ``bias_ih_l0`` / ``bias_hh_l0``; ``canonical`` maps one to the other.
A bidirectional encoder packs its rows by length, so the backward direction starts at each row's
last real token, as in the numpy engine.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.config import LMConfig
from rnnkit.models.torch.lm import TorchLM

_TORCH_NAME = re.compile(r"rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_BASE = {"weight_ih": "U", "weight_hh": "W", "bias_ih": "bu", "bias_hh": "bw"}


class TorchGated(TorchLM):
    def __init__(self, config: LMConfig) -> None:
        super().__init__(config)
        c = config
        self.E = self.weight(c.embedding, c.vocab_size)
        recurrent = nn.LSTM if c.cell == "lstm" else nn.GRU
        self.rnn = recurrent(c.embedding, c.hidden, c.layers, batch_first=True,
                             dropout=c.dropout if c.layers > 1 else 0.0, bidirectional=c.bidirectional,
                             dtype=self.torch_dtype)
        if not c.tie:
            self.V = self.weight(c.vocab_size, c.output_width)
        self.c = self.weight(c.vocab_size)

    def canonical(self, name: str) -> str:
        match = _TORCH_NAME.match(name)
        if not match:
            return name
        kind, layer, reverse = match.groups()
        return f"{_BASE[kind]}{int(layer) + 1 if int(layer) else ''}{'_back' if reverse else ''}"

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        super().load_params(params)
        self.rnn.flatten_parameters()  # cuDNN wants the weights in one buffer

    def initial_state(self, batch: int) -> torch.Tensor:
        c = self.config
        shape = (c.layers, batch, c.hidden)
        return torch.zeros(((2,) if c.cell == "lstm" else ()) + shape, dtype=self.E.dtype, device=self.E.device)

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-layer states (B, T, H, or 2H bidirectional) for inputs ``x`` (B, T) from state ``h``,
        and the last state. Dropout (training only): on the embedding, between layers, on the output."""
        p = self.config.dropout if self.training else 0.0
        inputs = F.dropout(F.embedding(x, self.E.t()), p)
        if self.config.bidirectional:
            lengths = (mask.sum(1) if mask is not None else torch.full((x.shape[0],), x.shape[1])).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
            states, last = self.rnn(packed)
            states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=x.shape[1])
        else:
            h = self.initial_state(x.shape[0]) if h is None else h
            states, last = self.rnn(inputs, (h[0], h[1]) if self.config.cell == "lstm" else h)
        if self.config.cell == "lstm":
            last = torch.stack(last)
        return F.dropout(states, p), last
