"""The encoder–decoder with attention in PyTorch: the same weights and loss as
``rnnkit.models.numpy.seq2seq``.

The encoder runs on packed rows (``nn.GRU``/``nn.LSTM``, both directions fused), the decoder over
the whole teacher-forced target at once (its recurrence does not depend on the attention, as in
Luong et al.), and attention, combination and output for every step at once, as batched matrix
products. Weights are ``enc_*``/``dec_*``/``init_*``/``att_*``/``out_*`` here, ``enc.U`` … under
their canonical names.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.config import Seq2SeqConfig
from rnnkit.models.schema import param_spec
from rnnkit.models.torch.dropout import dropout
from rnnkit.models.torch.gated import canonical_name, packed_states, recurrence
from rnnkit.models.torch.lm import params_of
from rnnkit.models.torch.precision import widened


class TorchSeq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        dtype = getattr(torch, config.dtype)
        for name, spec in param_spec(config).items():
            prefix, rest = name.split(".", 1)
            if rest in ("E",) or prefix not in ("enc", "dec"):
                setattr(self, name.replace(".", "_"), nn.Parameter(torch.empty(*spec.shape, dtype=dtype)))
        self.enc_rnn = recurrence(config.encoder(), dtype)
        self.dec_rnn = recurrence(config.decoder(), dtype)

    @staticmethod
    def canonical(name: str) -> str:
        prefix, rest = name.split("_", 1)
        return f"{prefix}.{canonical_name(rest) if rest.startswith('rnn.') else rest}"

    params = params_of

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.copy_(torch.from_numpy(np.ascontiguousarray(params[self.canonical(name)])))
        self.enc_rnn.flatten_parameters()
        self.dec_rnn.flatten_parameters()

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.config.dropout if self.training else 0.0)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The annotations (B, S, 2H) and the decoder's initial state."""
        annotations = packed_states(self.enc_rnn, self._dropout(F.embedding(x, self.enc_E.t())), mask)
        init = torch.tanh(annotations[:, 0, self.config.hidden:] @ self.init_W.t() + self.init_b)[None]
        state = torch.stack([init, torch.zeros_like(init)]) if self.config.cell == "lstm" else init
        return annotations, state

    def decode(self, y_in: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder states (B, T, D) and the last state."""
        inputs = self._dropout(F.embedding(y_in, self.dec_E.t()))
        states, last = self.dec_rnn(inputs, (state[0], state[1]) if self.config.cell == "lstm" else state)
        return states, torch.stack(last) if self.config.cell == "lstm" else last

    def head(self, s: torch.Tensor, annotations: torch.Tensor,
             mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, C) and attention weights (B, T, S) for decoder states ``s``."""
        kind, weights, inputs = self.config.attention, None, s
        if kind != "none":
            if kind == "dot":
                e = s @ annotations.transpose(1, 2)
            elif kind == "general":
                e = s @ (annotations @ self.att_W.t()).transpose(1, 2)
            else:
                keys = annotations @ self.att_Wk.t()
                e = torch.tanh((s @ self.att_Wq.t())[:, :, None, :] + keys[:, None, :, :]) @ self.att_v
            weights = torch.softmax(e.masked_fill(~mask[:, None, :], -torch.inf), dim=2)
            inputs = torch.cat([s, weights @ annotations], dim=2)
        combined = torch.tanh(inputs @ self.out_Wc.t() + self.out_bc)
        return combined @ self.out_V.t() + self.out_b, weights

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, y_in: torch.Tensor, y_out: torch.Tensor,
                y_mask: torch.Tensor) -> torch.Tensor:
        """The summed cross-entropy of the batch's real target tokens."""
        annotations, state = self.encode(x, x_mask)
        states, _ = self.decode(y_in, state)
        logits, _ = self.head(states, annotations, x_mask)
        # In float32 under autocast: a sum of bf16 terms would lose the loss's last digits.
        with torch.autocast(logits.device.type, enabled=False):
            return F.cross_entropy(widened(logits[y_mask]), y_out[y_mask], reduction="sum")
