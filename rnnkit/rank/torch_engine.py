"""The dual encoder in PyTorch: the same weights and scores as ``rnnkit.rank.numpy_engine``.

The encoder is ``nn.LSTM`` / ``nn.GRU`` under the gated language model's names (``E``, ``U``,
``W``, ``bu``, ``bw``, …), run on packed rows so that each one ends at its last real token.
``forward`` is the training loss (what DistributedDataParallel and ``torch.compile`` wrap). A
reranker's matching head (``x.Q``, ``x.q``, ``x.u``) is ``match``, as ``rnnkit.rank.matching`` writes it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.schema import param_spec
from rnnkit.models.threads import one_blas_thread
from rnnkit.models.torch.dropout import dropout
from rnnkit.models.torch.engine import TorchTrainable
from rnnkit.models.torch.gated import canonical_name, packed_states, recurrence
from rnnkit.models.torch.lm import load_params, params_of, word_major
from rnnkit.models.torch.precision import widened
from rnnkit.rank.config import RankerConfig
from rnnkit.rank.data import PairBatch
from rnnkit.rank.matching import MASKED


class TorchDualEncoder(nn.Module):
    def __init__(self, config: RankerConfig) -> None:
        super().__init__()
        self.config = config
        dtype = getattr(torch, config.dtype)
        spec = param_spec(config)
        self.E = word_major(*spec["E"].shape, dtype)
        self.rnn = recurrence(config.encoder(), dtype)
        self.M = nn.Parameter(torch.empty(*spec["M"].shape, dtype=dtype))
        if config.reranks:
            self.x = nn.ParameterDict({name[2:]: nn.Parameter(torch.empty(*spec[name].shape, dtype=dtype))
                                       for name in ("x.Q", "x.q", "x.u")})

    canonical = staticmethod(canonical_name)
    load_params = load_params
    params = params_of

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encodings (B, D) of padded id rows ``x`` (B, T)."""
        return self.encode_states(x, mask)[0]

    def encode_states(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encodings (B, D), and the top layer's states (B, T, width) that they pool."""
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
            return pooled, states
        bag = (F.embedding(x, self.E.t()) * mask[:, :, None]).sum(dim=1)  # the words, summed
        return torch.cat([pooled, bag / bag.norm(dim=1, keepdim=True)], dim=1), states

    def forward(self, contexts: torch.Tensor, context_mask: torch.Tensor, responses: torch.Tensor,
                response_mask: torch.Tensor, labels: torch.Tensor | None = None, negatives: torch.Tensor | None = None,
                negative_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The summed loss: binary cross-entropy of σ(cᵀ M r) with ``labels``, or, without them,
        in-batch negatives (softmax cross-entropy of each context over the batch's responses, and
        its hard ``negatives`` (n·B, T) after them)."""
        c, c_states = self.encode_states(contexts, context_mask)
        r, r_states = self.encode_states(responses, response_mask)
        c = c @ self.M
        candidates = r if negatives is None else torch.cat([r, self.encode(negatives, negative_mask)])
        # Scores and loss in float32 under autocast: a sum of bf16 terms would lose the loss's last digits.
        with torch.autocast(c.device.type, enabled=False):
            c, candidates = widened(c), widened(candidates)
            if labels is not None:
                s = (c * candidates).sum(dim=1)
                return (F.softplus(s) - labels * s).sum()
            candidates, first = every_process_rows(candidates) if self.training else (candidates, 0)
            S = c @ candidates.t()
            loss = (torch.logsumexp(S, dim=1) - S[:, first:first + len(c)].diagonal()).sum()
        if self.config.reranks and len(c) > 1:  # the head, on this process's rows; no error into the states
            candidates = match_candidates(len(c), self.config.match_negatives, c.device)
            contexts_of = torch.arange(len(c), device=c.device).repeat_interleave(candidates.shape[1])
            chosen = candidates.ravel()
            s = self.match(c_states.detach()[contexts_of], context_mask[contexts_of], r_states.detach()[chosen],
                           response_mask[chosen]).view(candidates.shape)
            loss = loss + (torch.logsumexp(s, dim=1) - s[:, 0]).sum()
        return loss

    def match(self, A: torch.Tensor, mask_a: torch.Tensor, B: torch.Tensor, mask_b: torch.Tensor) -> torch.Tensor:
        """The matching head's scores (P,) of P pairs of context states A and response states B."""
        E = (A @ B.transpose(1, 2)).masked_fill(~(mask_a[:, :, None] & mask_b[:, None, :]), MASKED)
        A_att, B_att = E.softmax(dim=2) @ B, E.softmax(dim=1).transpose(1, 2) @ A
        v = torch.cat([_pool(torch.cat([A * A_att, A - A_att], dim=2), mask_a),
                       _pool(torch.cat([B * B_att, B - B_att], dim=2), mask_b)], dim=1)
        return torch.tanh(v @ self.x["Q"] + self.x["q"]) @ self.x["u"]


def _pool(f: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[max, mean] of features (P, T, F) over each row's real steps."""
    largest = f.masked_fill(~mask[:, :, None], -torch.inf).max(dim=1).values
    return torch.cat([largest, (f * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)], dim=1)


def match_candidates(size: int, negatives: int, device: torch.device) -> torch.Tensor:
    """(B, 1 + n): each row of a batch, then its n neighbours (``numpy.ranker.match_candidates``)."""
    return (torch.arange(size, device=device)[:, None]
            + torch.arange(min(negatives, size - 1) + 1, device=device)[None, :]) % size


def every_process_rows(rows: torch.Tensor) -> tuple[torch.Tensor, int]:
    """In a run of many processes, every process's ``rows`` in rank order (the whole step's batch:
    in-batch negatives from all of it, as one process would draw them), and where this process's
    start; gradients flow back to the process that encoded each row. Alone: ``rows`` and 0."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return rows, 0
    from torch.distributed.nn.functional import all_gather

    sizes = [torch.zeros((), dtype=torch.long, device=rows.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor(len(rows), device=rows.device))
    sizes = [int(n) for n in sizes]
    padded = F.pad(rows, (0, 0, 0, max(sizes) - len(rows)))  # all_gather needs one shape
    parts = all_gather(padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)]), sum(sizes[: dist.get_rank()])


class TorchRankerEngine(TorchTrainable):
    """A dual encoder."""

    config: RankerConfig
    module = staticmethod(TorchDualEncoder)

    def _loss(self, batch: PairBatch, carry: None, module: torch.nn.Module | None = None):
        tensors = self._tensors(batch.contexts, batch.context_mask, batch.responses, batch.response_mask)
        labels = None if batch.labels is None else self._tensors(batch.labels.astype(self.config.dtype))[0]
        negatives = batch.negatives_flat()
        negatives = self._tensors(*negatives) if negatives is not None else (None, None)
        return (module or self.forward_module)(*tensors, labels, *negatives), None

    def encode(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x, mask = self._tensors(x, mask)
        self.model.eval()
        with torch.no_grad():
            return self.model.encode(x, mask).cpu().numpy()

    def score_matrix(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        c_, r_ = self._tensors(c, r)
        with torch.no_grad():
            cM = c_ @ self.model.M
            if self.device.type == "cpu":
                # Against a repository (1 × D by D × 100k) the product is one pass over r, which numpy's
                # BLAS makes faster than torch's CPU matmul; on one thread, because idle OpenBLAS threads
                # spin and slow torch's next operations (benchmarks/chat_latency.py).
                with one_blas_thread():
                    return cM.numpy() @ np.asarray(r, dtype=cM.numpy().dtype).T
            return (cM @ r_.t()).cpu().numpy()

    def encode_states(self, x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, mask = self._tensors(x, mask)
        self.model.eval()
        with torch.no_grad():
            return tuple(t.cpu().numpy() for t in self.model.encode_states(x, mask))

    def match_scores(self, A: np.ndarray, mask_a: np.ndarray, B: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
        self.model.eval()
        with torch.no_grad():
            return self.model.match(*self._tensors(A, mask_a, B, mask_b)).cpu().numpy()
