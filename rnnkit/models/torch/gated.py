"""GRU and LSTM language models in PyTorch: the same weights as ``rnnkit.models.numpy.gated``.

The recurrence is ``nn.GRU`` / ``nn.LSTM``, whose gates are exactly the numpy engine's, so the
fused kernels run (a C++ loop on CPU, cuDNN on CUDA, with its weights kept in one flat buffer).
Only the names differ: ``U``/``W``/``bu``/``bw`` here are PyTorch's ``weight_ih_l0`` /
``weight_hh_l0`` / ``bias_ih_l0`` / ``bias_hh_l0``; ``canonical`` maps one to the other.
A bidirectional encoder's backward direction starts at each row's last real token, as in the numpy
engine (``packed_states``).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.network import ADAPTIVE_DIVISOR, Network
from rnnkit.models.torch.dropout import dropout
from rnnkit.models.torch.lm import TorchLM, word_major

_TORCH_NAME = re.compile(r"rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_BASE = {"weight_ih": "U", "weight_hh": "W", "bias_ih": "bu", "bias_hh": "bw"}
_ADAPTIVE_NAME = re.compile(r"adaptive\.tail\.(\d+)\.([01])\.weight$")


def recurrence(config: Network, dtype: torch.dtype, inputs: int | None = None) -> nn.Module:
    """``nn.LSTM`` or ``nn.GRU`` for the config's layers (batch first), named ``rnn`` by its owner;
    ``inputs``: the first layer's input width, when it reads more than the embedding."""
    c = config
    layers = nn.LSTM if c.cell == "lstm" else nn.GRU
    return layers(inputs or c.embedding, c.hidden, c.layers, batch_first=True,
                  dropout=c.dropout if c.layers > 1 else 0.0, bidirectional=c.bidirectional, dtype=dtype)


def canonical_name(name: str) -> str:
    """PyTorch's name of a recurrent weight (``rnn.weight_ih_l1_reverse``) → rnnkit's (``U2_back``);
    of an adaptive softmax's (``adaptive.head.weight``, ``adaptive.tail.0.1.weight``) → ``V``, ``tail1.V``."""
    if name.startswith("adaptive."):
        return _adaptive_name(name)
    match = _TORCH_NAME.match(name)
    if not match:
        return name
    kind, layer, reverse = match.groups()
    return f"{_BASE[kind]}{int(layer) + 1 if int(layer) else ''}{'_back' if reverse else ''}"


def _adaptive_name(name: str) -> str:
    if name in ("adaptive.head.weight", "adaptive.head.bias"):
        return "V" if name.endswith("weight") else "c"
    cluster, which = _ADAPTIVE_NAME.match(name).groups()
    return f"tail{int(cluster) + 1}.{'PV'[int(which)]}"


def run_layer(rnn: nn.Module, k: int, x: torch.Tensor, state, reverse: bool = False) -> tuple[torch.Tensor, ...]:
    """Layer ``k`` of ``rnn`` alone (its backward direction with ``reverse``) over ``x``, batch first,
    from ``state``: ``torch.lstm``'s (outputs, h, c) or ``torch.gru``'s (outputs, h)."""
    suffix = f"_l{k}" + ("_reverse" if reverse else "")
    weights = [getattr(rnn, f"{w}{suffix}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    run = torch.lstm if isinstance(rnn, nn.LSTM) else torch.gru
    return run(x, state, weights, True, 1, 0.0, rnn.training, False, True)


def stacked(rnn: nn.Module, inputs: torch.Tensor, h) -> tuple[torch.Tensor, torch.Tensor | tuple]:
    """``rnn(inputs, h)``; in training on a CPU a layer at a time, with ``dropout`` between the layers:
    nn.LSTM's own dropout draws one number for each element (1 ms of a 30 ms step at
    word_language_model's settings), ours a quarter. (On CUDA, cuDNN wants the layers in one call.)"""
    if not (rnn.training and rnn.dropout and rnn.num_layers > 1 and inputs.device.type == "cpu"):
        return rnn(inputs, h)
    lstm = isinstance(rnn, nn.LSTM)
    below, lasts = inputs, []
    for k in range(rnn.num_layers):
        below, *last = run_layer(rnn, k, below, (h[0][k:k + 1], h[1][k:k + 1]) if lstm else h[k:k + 1])
        lasts.append(last)
        if k < rnn.num_layers - 1:
            below = dropout(below, rnn.dropout)
    if lstm:
        return below, (torch.cat([hk for hk, _ in lasts]), torch.cat([ck for _, ck in lasts]))
    return below, torch.cat([hk for hk, in lasts])


def packed_states(rnn: nn.Module, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Top-layer states (B, T, width) of rows of different lengths, each row ending (and a backward
    direction starting) at its last real token; zeros after it. On CUDA the rows are packed (cuDNN
    runs packed sequences fast); elsewhere ``reversed_states`` gives the same states."""
    if inputs.device.type != "cuda":
        return reversed_states(rnn, inputs, mask)
    T = inputs.shape[1]
    lengths = (mask.sum(1) if mask is not None else torch.full((inputs.shape[0],), T)).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
    states, _ = rnn(packed)
    return nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=T)[0]


def reversed_states(rnn: nn.Module, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``packed_states`` without packing: each layer runs on the padded rows, its backward
    direction on each row reversed within its length (then turned back), as the numpy engine does.
    On a CPU the backward pass through packed sequences is ~5× slower than through padded ones
    (``benchmarks/rank_step.py``); the padding's states are computed and then zeroed."""
    if mask is None:
        return rnn(inputs)[0]
    B, T = mask.shape
    steps = torch.arange(T, device=mask.device)[None, :]
    lengths = mask.sum(1, keepdim=True)
    order = torch.where(steps < lengths, lengths - 1 - steps, steps)  # its own inverse
    flip = order[:, :, None]
    below, directions = inputs, 2 if rnn.bidirectional else 1
    for k in range(rnn.num_layers):
        outputs = []
        for d in range(directions):
            x = below if d == 0 else below.gather(1, flip.expand(-1, -1, below.shape[2]))
            zero = x.new_zeros(1, B, rnn.hidden_size)
            out = run_layer(rnn, k, x, (zero, zero) if isinstance(rnn, nn.LSTM) else zero, reverse=d == 1)[0]
            outputs.append(out if d == 0 else out.gather(1, flip.expand(-1, -1, out.shape[2])))
        below = torch.cat(outputs, dim=2) if directions == 2 else outputs[0]
        if k < rnn.num_layers - 1 and rnn.training:  # between layers, as nn.LSTM's own dropout
            below = dropout(below, rnn.dropout)
    return below * mask[:, :, None].to(below.dtype)


class TorchGated(TorchLM):
    def __init__(self, config: Network) -> None:
        super().__init__(config)
        c = config
        self.E = word_major(c.embedding, c.vocab_size, self.torch_dtype)
        self.rnn = recurrence(c, self.torch_dtype)
        if c.projection:
            self.P = self.weight(c.projection, c.output_width)
        if c.cutoffs:  # PyTorch's own layer: the head, then each cluster's projection and output matrix
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(c.head_width, c.vocab_size, list(c.cutoffs),
                                                          div_value=float(ADAPTIVE_DIVISOR), head_bias=True,
                                                          dtype=self.torch_dtype)
            return
        if not c.tie:
            self.V = self.weight(c.vocab_size, c.head_width)
        self.c = self.weight(c.vocab_size)

    def canonical(self, name: str) -> str:
        return canonical_name(name)

    def initial_state(self, batch: int) -> torch.Tensor:
        c = self.config
        shape = (c.layers, batch, c.hidden)
        return torch.zeros(((2,) if c.cell == "lstm" else ()) + shape, dtype=self.E.dtype, device=self.E.device)

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-layer states (B, T, H, or 2H bidirectional) for inputs ``x`` (B, T) from state ``h``,
        and the last state. Dropout (training only): on the embedding, between layers, on the output."""
        p = self.config.dropout if self.training else 0.0
        inputs = dropout(F.embedding(x, self.E.t()), p)
        if self.config.bidirectional:  # an encoder: it carries no state
            return dropout(packed_states(self.rnn, inputs, mask), p), torch.zeros(0)
        h = self.initial_state(x.shape[0]) if h is None else h
        states, last = stacked(self.rnn, inputs, (h[0], h[1]) if self.config.cell == "lstm" else h)
        return dropout(states, p), torch.stack(last) if self.config.cell == "lstm" else last
