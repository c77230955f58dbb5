"""The dual encoder in numpy: the reference for the ranker (Lowe et al. 2015; Chatbots, Part 2).

One encoder — the recurrent layers of ``NumpyGated``, their hand-written backward pass included —
reads a context into c and a response into r (B, D); the score is s = cᵀ M r.

* binary objective: loss = Σ softplus(s) − l·s (the cross-entropy of σ(s) against the label l);
  ∂L/∂s = σ(s) − l, so ∂L/∂c = ∂s·(M r), ∂L/∂r = ∂s·(Mᵀ c), ∂L/∂M = Σ ∂s·c rᵀ.
* in-batch negatives: S = C M Rᵀ (B×B), loss = Σ_i logsumexp(S_i) − S_ii; ∂L/∂S = softmax(S) − I,
  so ∂L/∂C = ∂S (R Mᵀ), ∂L/∂R = ∂Sᵀ (C M), ∂L/∂M = Cᵀ ∂S R. Hard negatives H (``negatives``) are
  more rows of R: R = [R; H] (B×(B+nB)), the truth still S_ii, and ∂L/∂H the rows of ∂Sᵀ (C M) below B.

Pooling: the last state (for a bidirectional encoder, the forward direction's at the last real
token and the backward direction's at the first), or the maximum over the real time steps, whose
gradient goes to the step that held it. The encoder's own backward pass takes it from there.

A reranker adds a second objective: each context's true response and ``match_negatives`` others of
the batch (its neighbours: the batch is shuffled, so they are random responses) are read with the
context by the matching head (``matching``), loss = Σ_i logsumexp(s_i) − s_i0 over them. (Measured
on chit-chat: the head learned more slowly from the responses that S scores highest — in a corpus
of short replies many of those answer the context too.) The head reads the encoder's states but
sends no error back into them: the dual encoder learns as it would alone, and the head beside it.

With ``bag``, the encoding also holds b = s / ‖s‖ for s = Σ_t E x_t (the text's word embeddings
summed): ∂L/∂s = (∂L/∂b − b (b·∂L/∂b)) / ‖s‖, and every word of the text gets ∂L/∂s in its column of E.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.models.numpy.engine import NumpyTrainable
from rnnkit.models.numpy.gated import NumpyGated
from rnnkit.models.numpy.lm import Forward, sparse_gradient
from rnnkit.models.threads import one_blas_thread
from rnnkit.rank.config import RankerConfig
from rnnkit.rank.data import PairBatch
from rnnkit.rank.matching import Match, match, match_backward


@dataclass
class Encoding:
    """What ``encode`` keeps for ``encode_backward``."""

    x: np.ndarray
    mask: np.ndarray
    forward: Forward
    argmax: np.ndarray | None  # max pooling: the step holding each unit's maximum (B, D)
    bag: np.ndarray | None = None  # the normalised bag of words (B, D)
    bag_norm: np.ndarray | None = None  # ‖s‖ (B, 1)


def sigmoid(s: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * s) + 1.0)


class NumpyDualEncoder:
    def __init__(self, config: RankerConfig, params: dict[str, np.ndarray]) -> None:
        self.config, self.params = config, params
        self.encoder = NumpyGated(config.encoder(), params)  # its layers alone: no output layer here

    # ------------------------------------------------------------------ forward

    def encode(self, x: np.ndarray, mask: np.ndarray,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, Encoding]:
        """Encodings (B, D) of padded id rows ``x`` (B, T), ``mask`` True on real tokens."""
        fwd = self.encoder.layers_forward(x, None, rng, mask)
        states = fwd.states[-1]
        encoding = Encoding(x, mask, fwd, None)
        if self.config.pooling == "max":
            encoding.argmax = np.where(mask[:, :, None], states, -np.inf).argmax(axis=1)
            vectors = np.take_along_axis(states, encoding.argmax[:, None, :], axis=1)[:, 0]
        else:
            vectors = states[np.arange(len(x)), mask.sum(axis=1) - 1]
            if self.config.bidirectional:  # the backward direction ends at the first token
                H = self.config.hidden
                vectors[:, H:] = states[:, 0, H:]
        if not self.config.bag:
            return vectors, encoding
        summed = (self.params["E"].T[x] * mask[:, :, None]).sum(axis=1)
        encoding.bag_norm = np.linalg.norm(summed, axis=1, keepdims=True)
        encoding.bag = summed / encoding.bag_norm
        return np.concatenate([vectors, encoding.bag], axis=1), encoding

    def scores(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        """cᵢᵀ M rᵢ for each pair (B,)."""
        return ((c @ self.params["M"]) * r).sum(axis=1)

    def score_matrix(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        """cᵢᵀ M rⱼ for every context against every response (Bc, Br)."""
        return (c @ self.params["M"]) @ r.T

    def loss(self, batch: PairBatch) -> float:
        return self.loss_and_grads(batch, gradients=False)[0]

    # ------------------------------------------------------------------ backward

    def encode_backward(self, encoding: Encoding, d_vectors: np.ndarray, grads: dict[str, np.ndarray]) -> None:
        """Add the encoder weights' gradients, given the error at the encodings, into ``grads``."""
        x, mask, fwd = encoding.x, encoding.mask, encoding.forward
        arriving = np.zeros_like(fwd.states[-1])
        if encoding.bag is not None:
            d_vectors, d_bag = np.split(d_vectors, [arriving.shape[2]], axis=1)
            d_sum = (d_bag - encoding.bag * (encoding.bag * d_bag).sum(axis=1, keepdims=True)) / encoding.bag_norm
        if encoding.argmax is not None:
            np.put_along_axis(arriving, encoding.argmax[:, None, :], d_vectors[:, None, :], axis=1)
        else:
            rows, last = np.arange(len(x)), mask.sum(axis=1) - 1
            if self.config.bidirectional:
                H = self.config.hidden
                arriving[rows, last, :H] = d_vectors[:, :H]
                arriving[:, 0, H:] += d_vectors[:, H:]  # a one-token row has both at step 0
            else:
                arriving[rows, last] = d_vectors
        part: dict[str, np.ndarray] = {}
        name, rows_of = self.encoder.layers_backward(x, fwd, arriving, part, 0)
        if encoding.bag is not None:  # every real word of the text gets ∂L/∂s in its embedding column
            rows_of = rows_of + (d_sum[:, None, :] * mask[:, :, None]).reshape(rows_of.shape)
        _, words, compact = sparse_gradient(x, name, rows_of, part, self.encoder.dtype)
        for key, grad in part.items():
            grads[key] = grads[key] + grad if key in grads else grad
        if name not in grads:
            grads[name] = np.zeros_like(self.params[name])
        grads[name][:, words] += compact.T

    def loss_and_grads(self, batch: PairBatch, rng: np.random.Generator | None = None,
                       gradients: bool = True) -> tuple[float, dict[str, np.ndarray]]:
        """The summed loss of the batch under the config's objective, and every weight's gradient."""
        c, c_cache = self.encode(batch.contexts, batch.context_mask, rng)
        r, r_cache = self.encode(batch.responses, batch.response_mask, rng)
        M = self.params["M"]
        cM, rMt = c @ M, r @ M.T
        matched = None  # a reranker's head, on in-batch negatives
        grads: dict[str, np.ndarray] = {}
        if batch.labels is not None:  # binary: σ(s) against the label
            s, labels = (cM * r).sum(axis=1), batch.labels.astype(c.dtype)
            loss = float((np.logaddexp(0.0, s) - labels * s).sum())
            if not gradients:
                return loss, {}
            ds = sigmoid(s) - labels
            dc, dr, dM = ds[:, None] * rMt, ds[:, None] * cM, (c * ds[:, None]).T @ r
        else:  # in-batch negatives: softmax over the batch's responses and its hard negatives
            negatives = batch.negatives_flat()
            h, h_cache = self.encode(*negatives, rng) if negatives is not None else (r[:0], None)
            candidates = np.concatenate([r, h])
            S = cM @ candidates.T
            log_z = np.logaddexp.reduce(S, axis=1)
            loss = float((log_z - np.diagonal(S)).sum())
            matched = self.match_forward(batch, c_cache, r_cache) if self.config.reranks and len(c) > 1 else None
            loss += matched[0] if matched else 0.0
            if not gradients:
                return loss, {}
            dS = np.exp(S - log_z[:, None])
            dS[np.arange(len(c)), np.arange(len(c))] -= 1.0
            dc, dM = dS @ (candidates @ M.T), c.T @ dS @ candidates
            dr, dh = np.split(dS.T @ cM, [len(r)])
            if h_cache is not None:
                self.encode_backward(h_cache, dh, grads)
        grads["M"] = dM
        if matched:
            match_backward(self.params, matched[1], matched[2], grads)
        self.encode_backward(c_cache, dc, grads)
        self.encode_backward(r_cache, dr, grads)
        return loss, grads

    def match_forward(self, batch: PairBatch, c_cache: Encoding,
                      r_cache: Encoding) -> tuple[float, Match, np.ndarray]:
        """The reranker's loss: each context's truth among its negatives, as the head scores them
        (softmax cross-entropy); what ``match_backward`` needs, and ∂L/∂s."""
        candidates = match_candidates(len(batch.contexts), self.config.match_negatives)
        B, k = candidates.shape
        contexts = np.repeat(np.arange(B), k)
        s, kept = match(self.params, c_cache.forward.states[-1][contexts], batch.context_mask[contexts],
                        r_cache.forward.states[-1][candidates.ravel()], batch.response_mask[candidates.ravel()])
        s = s.reshape(B, k)
        log_z = np.logaddexp.reduce(s, axis=1)
        ds = np.exp(s - log_z[:, None])
        ds[:, 0] -= 1.0
        return float((log_z - s[:, 0]).sum()), kept, ds.ravel()

    def match_scores(self, A: np.ndarray, mask_a: np.ndarray, B: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
        """The head's scores of P (context states, response states) pairs."""
        return match(self.params, A, mask_a, B, mask_b)[0]


def match_candidates(size: int, negatives: int) -> np.ndarray:
    """(B, 1 + n): each row of a batch of ``size``, then its n neighbours (fewer in a small batch)."""
    return (np.arange(size)[:, None] + np.arange(min(negatives, size - 1) + 1)[None, :]) % size


class NumpyRankerEngine(NumpyTrainable):
    """A dual encoder."""

    def __init__(self, config: RankerConfig, params: dict[str, np.ndarray], **options) -> None:
        super().__init__(config, params, **options)
        self.model = NumpyDualEncoder(config, params)

    def encode(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return self.model.encode(x, mask)[0]

    def score_matrix(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        return self.model.score_matrix(c, r)

    def encode_states(self, x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with one_blas_thread():
            vectors, encoding = self.model.encode(x, mask)
        return vectors, encoding.forward.states[-1]

    def match_scores(self, A: np.ndarray, mask_a: np.ndarray, B: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return self.model.match_scores(A, mask_a, B, mask_b)

    def train_step(self, batch: PairBatch, lr: float, scale: float, carry: None = None) -> tuple[float, None]:
        with one_blas_thread():
            loss, grads = self.model.loss_and_grads(batch, self.rng)
            self._update(grads, lr, scale)
        return loss, None

    def loss(self, batch: PairBatch, carry: None = None) -> tuple[float, None]:
        with one_blas_thread():
            return self.model.loss(batch), None
