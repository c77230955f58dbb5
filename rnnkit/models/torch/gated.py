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

from rnnkit.models.numpy.gated import GATES
from rnnkit.models.torch.rnn import LanguageModelHead

_TORCH_NAME = re.compile(r"rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_BASE = {"weight_ih": "U", "weight_hh": "W", "bias_ih": "bu", "bias_hh": "bw"}


class TorchGated(LanguageModelHead):
    def __init__(self, cell: str, vocab_size: int, hidden: int, *, layers: int = 1, embedding: int | None = None,
                 dropout: float = 0.0, tie: bool = False, bidirectional: bool = False,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        D = embedding or hidden
        self.cell, self.layers, self.dropout, self.hidden = cell, layers, dropout, hidden
        self.E = nn.Parameter(torch.empty(D, vocab_size, dtype=dtype))
        recurrent = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = recurrent(D, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0,
                             bidirectional=bidirectional, dtype=dtype)
        if not tie:
            self.V = nn.Parameter(torch.empty(vocab_size, hidden * (2 if bidirectional else 1), dtype=dtype))
        self.c = nn.Parameter(torch.zeros(vocab_size, dtype=dtype))

    @classmethod
    def from_numpy(cls, params: dict[str, np.ndarray], device: str | torch.device = "cpu",
                   dropout: float = 0.0) -> TorchGated:
        E, W = params["E"], params["W"]
        hidden = W.shape[1]
        cell = {g: c for c, g in GATES.items()}[W.shape[0] // hidden]
        layers = sum(1 for k in params if re.fullmatch(r"W\d*", k))
        model = cls(cell, E.shape[1], hidden, layers=layers, embedding=E.shape[0], dropout=dropout,
                    tie="V" not in params, bidirectional="W_back" in params, dtype=getattr(torch, str(W.dtype)))
        model.load_numpy(params)
        return model.to(device)

    def canonical(self, name: str) -> str:
        match = _TORCH_NAME.match(name)
        if not match:
            return name
        kind, layer, reverse = match.groups()
        return f"{_BASE[kind]}{int(layer) + 1 if int(layer) else ''}{'_back' if reverse else ''}"

    def load_numpy(self, params: dict[str, np.ndarray]) -> None:
        super().load_numpy(params)
        self.rnn.flatten_parameters()  # cuDNN wants the weights in one buffer

    def initial_state(self, batch: int) -> torch.Tensor:
        shape = (self.layers, batch, self.hidden)
        return torch.zeros(((2,) if self.cell == "lstm" else ()) + shape, dtype=self.E.dtype, device=self.E.device)

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-layer states (B, T, H, or 2H bidirectional) for inputs ``x`` (B, T) from state ``h``,
        and the last state. Dropout (training only): on the embedding, between layers, on the output."""
        p = self.dropout if self.training else 0.0
        inputs = F.dropout(F.embedding(x, self.E.t()), p)
        if self.rnn.bidirectional:
            lengths = (mask.sum(1) if mask is not None else torch.full((x.shape[0],), x.shape[1])).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
            states, last = self.rnn(packed)
            states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=x.shape[1])
        else:
            h = self.initial_state(x.shape[0]) if h is None else h
            states, last = self.rnn(inputs, (h[0], h[1]) if self.cell == "lstm" else h)
        if self.cell == "lstm":
            last = torch.stack(last)
        return F.dropout(states, p), last


def torch_model(params: dict[str, np.ndarray], device: str | torch.device = "cpu",
                dropout: float = 0.0) -> LanguageModelHead:
    """The torch model for numpy weights: the cell follows from the weights' names and shapes."""
    from rnnkit.models.torch.rnn import TorchRNN

    return (TorchGated if "bw" in params else TorchRNN).from_numpy(params, device, dropout)
