"""The encoder–decoder with attention in PyTorch: the same weights and loss as
``rnnkit.seq2seq.numpy_engine``.

The encoder runs on packed rows (``nn.GRU``/``nn.LSTM``, both directions fused), the decoder over
the whole teacher-forced target at once (its recurrence does not depend on the attention, as in
Luong et al.), and attention, combination and output for every step at once, as batched matrix
products; with input feeding the decoder and its head go step by step. Weights are
``enc_*``/``dec_*``/``init_*``/``att_*``/``out_*`` here, ``enc.U`` … under their canonical names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.schema import param_spec
from rnnkit.models.torch.dropout import dropout
from rnnkit.models.torch.engine import TorchTrainable
from rnnkit.models.torch.gated import canonical_name, packed_states, recurrence
from rnnkit.models.torch.lm import params_of
from rnnkit.models.torch.precision import widened
from rnnkit.seq2seq.config import Seq2SeqConfig
from rnnkit.seq2seq.data import Seq2SeqBatch
from rnnkit.seq2seq.numpy_engine import Encoded, rows_of, selected


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
        self.dec_rnn = recurrence(config.decoder(), dtype, inputs=config.decoder_input)

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

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """The annotations (B, S, 2H) and the decoder's initial state (with input feeding, and h̃_0 = 0)."""
        annotations = packed_states(self.enc_rnn, self._dropout(F.embedding(x, self.enc_E.t())), mask)
        init = torch.tanh(annotations[:, 0, self.config.hidden:] @ self.init_W.t() + self.init_b)[None]
        state = torch.stack([init, torch.zeros_like(init)]) if self.config.cell == "lstm" else init
        return annotations, (state, torch.zeros_like(init[0])) if self.config.input_feeding else state

    def decode(self, y_in: torch.Tensor, state: Any, annotations: torch.Tensor, mask: torch.Tensor,
               keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None, Any]:
        """h̃ (B, T, D) over the teacher-forced ``y_in``, the attention weights (B, T, S), and the
        state after the last step. Without input feeding the recurrence runs over all steps at
        once; with it, step by step, each reading the last step's h̃. ``keys``: the annotations'
        (``keys``), when a decoder going step by step has made them once."""
        inputs = self._dropout(F.embedding(y_in, self.dec_E.t()))
        keys = self.keys(annotations) if keys is None else keys
        if not self.config.input_feeding:
            states, last = self._recur(inputs, state)
            return (*self.combine(states, annotations, keys, mask), last)
        state, fed = state
        steps, weights = [], []
        for t in range(inputs.shape[1]):
            s, state = self._recur(torch.cat([inputs[:, t:t + 1], fed[:, None]], dim=2), state)
            combined, w = self.combine(s, annotations, keys, mask)
            fed = combined[:, 0]
            steps.append(combined)
            weights.append(w)
        return torch.cat(steps, dim=1), None if weights[0] is None else torch.cat(weights, dim=1), (state, fed)

    def _recur(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder states (B, T, D) and the last state."""
        states, last = self.dec_rnn(inputs, (state[0], state[1]) if self.config.cell == "lstm" else state)
        return states, torch.stack(last) if self.config.cell == "lstm" else last

    def keys(self, annotations: torch.Tensor) -> torch.Tensor | None:
        """What the scores compare each state with: A Wᵀ (general), A Wkᵀ (additive), once per source."""
        kind = self.config.attention
        return F.linear(annotations, self.att_W) if kind == "general" else \
            F.linear(annotations, self.att_Wk) if kind == "additive" else None

    def combine(self, s: torch.Tensor, annotations: torch.Tensor, keys: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h̃ (B, T, D) for decoder states ``s``, and the attention weights (B, T, S) (None
        without attention; with ``none`` and input feeding, the fixed mean's)."""
        kind, weights, inputs = self.config.attention, None, s
        if kind != "none":
            if kind == "dot":
                e = s @ annotations.transpose(1, 2)
            elif kind == "general":
                e = s @ keys.transpose(1, 2)
            else:
                e = torch.tanh(F.linear(s, self.att_Wq)[:, :, None, :] + keys[:, None, :, :]) @ self.att_v
            weights = torch.softmax(e.masked_fill(~mask[:, None, :], -torch.inf), dim=2)
        elif self.config.input_feeding:
            fixed = mask.to(s.dtype) / mask.sum(dim=1, keepdim=True)
            weights = fixed[:, None, :].expand(-1, s.shape[1], -1)
        if weights is not None:
            inputs = torch.cat([s, weights @ annotations], dim=2)
        # F.linear, not @ W.t(): autocast casts a weight (a leaf) once and keeps it for every step.
        return torch.tanh(F.linear(inputs, self.out_Wc, self.out_bc)), weights

    def logits(self, combined: torch.Tensor) -> torch.Tensor:
        return F.linear(combined, self.out_V, self.out_b)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, y_in: torch.Tensor, y_out: torch.Tensor,
                y_mask: torch.Tensor) -> torch.Tensor:
        """The summed cross-entropy of the batch's real target tokens."""
        annotations, state = self.encode(x, x_mask)
        combined, _, _ = self.decode(y_in, state, annotations, x_mask)
        logits = self.logits(combined)
        # In float32 under autocast: a sum of bf16 terms would lose the loss's last digits.
        with torch.autocast(logits.device.type, enabled=False):
            return F.cross_entropy(widened(logits[y_mask]), y_out[y_mask], reduction="sum")


class TorchSeq2SeqEngine(TorchTrainable):
    """An encoder–decoder. Decoding keeps its state and the encoded source as tensors on the device."""

    config: Seq2SeqConfig
    module = staticmethod(TorchSeq2Seq)

    def _loss(self, batch: Seq2SeqBatch, carry: None, module: torch.nn.Module | None = None):
        return (module or self.forward_module)(*self._tensors(*batch.arrays)), None

    def encode(self, x: np.ndarray, mask: np.ndarray) -> Encoded:
        x, mask = self._tensors(x, mask)
        self.model.eval()
        with torch.no_grad():
            annotations, state = self.model.encode(x, mask)
            return Encoded(annotations, mask, state, keys=self.model.keys(annotations))

    def step(self, tokens: np.ndarray, state: Any, encoded: Encoded, allowed: np.ndarray | None = None):
        (x,) = self._tensors(tokens[:, None])
        mask = encoded.mask if allowed is None else encoded.mask & self._tensors(allowed)[0]
        with torch.no_grad():
            combined, weights, state = self.model.decode(x, state, encoded.annotations, mask, encoded.keys)
            log_probs = torch.log_softmax(self.model.logits(combined[:, 0]), dim=-1).cpu().numpy()
        attended = weights is not None and self.config.attention != "none"
        return log_probs, state, weights[:, 0].cpu().numpy() if attended else None

    def select(self, state: Any, encoded: Encoded, rows: np.ndarray) -> tuple[Any, Encoded]:
        (index,) = self._tensors(rows)
        return rows_of(state, index), selected(encoded, index)
