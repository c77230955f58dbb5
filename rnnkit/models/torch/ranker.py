"""The dual encoder in PyTorch: the same weights and scores as ``rnnkit.models.numpy.ranker``.

The encoder is ``nn.LSTM`` / ``nn.GRU`` under the gated language model's names (``E``, ``U``,
``W``, ``bu``, ``bw``, …), run on packed rows so that each one ends at its last real token.
``forward`` is the training loss (what DistributedDataParallel and ``torch.compile`` wrap).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.config import RankerConfig
from rnnkit.models.schema import param_spec
from rnnkit.models.torch.dropout import dropout
from rnnkit.models.torch.gated import canonical_name, packed_states, recurrence
from rnnkit.models.torch.lm import load_params, params_of


class TorchDualEncoder(nn.Module):
    def __init__(self, config: RankerConfig) -> None:
        super().__init__()
        self.config = config
        dtype = getattr(torch, config.dtype)
        spec = param_spec(config)
        self.E = nn.Parameter(torch.empty(*spec["E"].shape, dtype=dtype))
        self.rnn = recurrence(config.encoder(), dtype)
        self.M = nn.Parameter(torch.empty(*spec["M"].shape, dtype=dtype))

    canonical = staticmethod(canonical_name)
    load_params = load_params
    params = params_of

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encodings (B, D) of padded id rows ``x`` (B, T)."""
        c = self.config
        p = c.dropout if self.training else 0.0
        states = packed_states(self.rnn, dropout(F.embedding(x, self.E.t()), p), mask)
        if c.pooling == "max":
            pooled = states.masked_fill(~mask[:, :, None], -torch.inf).max(dim=1).values
        else:
            pooled = states[torch.arange(len(x), device=x.device), mask.sum(1) - 1]
            if c.bidirectional:  # the backward direction ends at the first token
                pooled = torch.cat([pooled[:, :c.hidden], states[:, 0, c.hidden:]], dim=1)
        if not c.bag:
            return pooled
        bag = (F.embedding(x, self.E.t()) * mask[:, :, None]).sum(dim=1)  # the words, summed
        return torch.cat([pooled, bag / bag.norm(dim=1, keepdim=True)], dim=1)

    def forward(self, contexts: torch.Tensor, context_mask: torch.Tensor, responses: torch.Tensor,
                response_mask: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The summed loss: binary cross-entropy of σ(cᵀ M r) with ``labels``, or, without them,
        in-batch negatives (softmax cross-entropy of each context over the batch's responses)."""
        c = self.encode(contexts, context_mask) @ self.M
        r = self.encode(responses, response_mask)
        if labels is not None:
            s = (c * r).sum(dim=1)
            return (F.softplus(s) - labels * s).sum()
        S = c @ r.t()
        return (torch.logsumexp(S, dim=1) - S.diagonal()).sum()
