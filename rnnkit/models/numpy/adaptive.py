"""The adaptive softmax (Grave et al., 2017), by hand: the reference the torch engine is checked against.

The vocabulary's ids run from frequent to rare. The head scores the first ``cutoffs[0]`` words
and one entry per tail cluster; a word of cluster k has log p = log p_head(k) + log p_k(word),
where cluster k's own softmax reads the state through a narrower projection ``tailk.P``.
Training computes a cluster only for the tokens whose target is in it: most tokens are frequent
words, so most of the vocabulary-sized work of a full softmax is never done. Exact probabilities
of every word remain (``log_probs``) for scoring and generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.models.network import Network
from rnnkit.models.numpy.softmax import log_softmax, softmax_at_targets
from rnnkit.models.threads import all_blas_threads


@dataclass
class _Cluster:
    """What the backward pass needs of one tail cluster: its rows, their projection and probabilities."""

    rows: np.ndarray
    projected: np.ndarray
    probs: np.ndarray
    targets: np.ndarray


@dataclass
class AdaptiveForward:
    top: np.ndarray  # (N, width): the states the output layer read
    head_probs: np.ndarray  # (N, head size)
    head_targets: np.ndarray  # (N,): the target word, or its cluster's entry in the head
    clusters: list[_Cluster | None]


class AdaptiveSoftmax:
    """The output layer of an LM config with ``cutoffs``, on the weights ``V``, ``c``, ``tailk.P``, ``tailk.V``."""

    def __init__(self, config: Network, params: dict[str, np.ndarray]) -> None:
        self.config = config
        self.params = params
        self.shortlist = config.cutoffs[0]

    def _head_logits(self, top: np.ndarray) -> np.ndarray:
        with all_blas_threads():
            logits = top @ self.params["V"].T
        logits += self.params["c"]
        return logits

    def _tail_logits(self, k: int, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        projected = top @ self.params[f"tail{k + 1}.P"].T
        return projected, projected @ self.params[f"tail{k + 1}.V"].T

    def log_probs(self, top: np.ndarray) -> np.ndarray:
        """log p of every word (N, C) for states ``top`` (N, width)."""
        head = log_softmax(self._head_logits(top))
        out = np.empty((len(top), self.config.vocab_size), dtype=top.dtype)
        out[:, :self.shortlist] = head[:, :self.shortlist]
        for k, (start, end, _) in enumerate(self.config.clusters):
            out[:, start:end] = log_softmax(self._tail_logits(k, top)[1]) + head[:, self.shortlist + k, None]
        return out

    def forward(self, top: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, AdaptiveForward]:
        """log p of each target (N,) for states ``top`` (N, width), and what ``backward`` needs."""
        cluster = np.searchsorted(np.asarray(self.config.cutoffs), targets, side="right") - 1  # -1: the head
        head_targets = np.where(cluster < 0, targets, self.shortlist + cluster)
        head_probs, target_log_probs = softmax_at_targets(self._head_logits(top), head_targets)
        clusters: list[_Cluster | None] = []
        for k, (start, _, _) in enumerate(self.config.clusters):
            rows = np.flatnonzero(cluster == k)
            if not len(rows):
                clusters.append(None)
                continue
            projected, logits = self._tail_logits(k, top[rows])
            probs, picked = softmax_at_targets(logits, targets[rows] - start)
            target_log_probs[rows] += picked
            clusters.append(_Cluster(rows, projected, probs, targets[rows] - start))
        return target_log_probs, AdaptiveForward(top, head_probs, head_targets, clusters)

    def backward(self, fwd: AdaptiveForward, weights: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The gradients of −Σ weights · log p(target) for every output weight, and the error at
        ``top``. Consumes the forward pass's probabilities (they become the output errors)."""
        error = _output_error(fwd.head_probs, fwd.head_targets, weights)
        with all_blas_threads():
            grads = {"V": error.T @ fwd.top, "c": error.sum(axis=0)}
            d_top = error @ self.params["V"]
        for k, part in enumerate(fwd.clusters):
            P, V = self.params[f"tail{k + 1}.P"], self.params[f"tail{k + 1}.V"]
            if part is None:
                grads[f"tail{k + 1}.P"], grads[f"tail{k + 1}.V"] = np.zeros_like(P), np.zeros_like(V)
                continue
            error = _output_error(part.probs, part.targets, weights[part.rows])
            d_projected = error @ V
            grads[f"tail{k + 1}.V"] = error.T @ part.projected
            grads[f"tail{k + 1}.P"] = d_projected.T @ fwd.top[part.rows]
            d_top[part.rows] += d_projected @ P
        return grads, d_top


def _output_error(probs: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(p − onehot(target)) · weight, row by row, in place."""
    probs[np.arange(len(targets)), targets] -= 1.0
    probs *= weights[:, None]
    return probs
