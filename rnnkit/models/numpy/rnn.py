"""The vanilla RNN language model in numpy: the reference engine (seed, Part 2).

    s_t = tanh(U x_t + W s_{t-1}),   o_t = softmax(V s_t),   s_{-1} = 0

``U`` is H×C (``U x_t`` is the column ``U[:, x_t]``), ``W`` is H×H, ``V`` is C×H. No biases,
as in the seed. Everything works on a batch of sentences padded to one length ``T`` with a
mask; a batch's loss and gradients are the sums over its sentences. Arrays keep the dtype of
the weights (float64 for checking, float32 to run).

Backpropagation through time follows the seed's truncation exactly: the error at output ``t``
flows back through steps ``t, t-1, …, t - bptt_truncate`` and no further. Instead of the seed's
double loop of outer products, the backward pass runs one loop over lags (each step one batched
matrix product for all outputs at once), or, when nothing is truncated, the usual single
backward sweep; the weight gradients are then one matrix product each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.models.numpy.threads import all_blas_threads

PARAMETERS = ("U", "V", "W")


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis; ``out=logits`` computes it in place (no vocabulary-sized temporaries)."""
    out = np.subtract(logits, logits.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


@dataclass
class Forward:
    """What the forward pass keeps for the backward pass."""

    states: np.ndarray  # (B, T, H): s_0 … s_{T-1}
    probs: np.ndarray  # (B, T, C): o_0 … o_{T-1}
    target_log_probs: np.ndarray | None = None  # (B, T): log o_t[y_t], when targets were given


class NumpyRNN:
    """A vanilla RNN language model with weights ``U`` (H×C), ``V`` (C×H), ``W`` (H×H)."""

    cell = "rnn"

    def __init__(self, params: dict[str, np.ndarray], bptt_truncate: int = 4) -> None:
        self.params = params
        self.bptt_truncate = bptt_truncate

    @classmethod
    def initialize(cls, vocab_size: int, hidden: int, *, bptt_truncate: int = 4,
                   rng: np.random.RandomState | np.random.Generator | None = None,
                   dtype: str | np.dtype = np.float64) -> NumpyRNN:
        """The seed's initialisation: uniform in ±1/√n (n = incoming connections), drawn U, V, W in
        that order from ``rng`` (numpy's global generator when None, as in the seed)."""
        rng = np.random if rng is None else rng
        C, H = vocab_size, hidden
        U = rng.uniform(-np.sqrt(1.0 / C), np.sqrt(1.0 / C), (H, C))
        V = rng.uniform(-np.sqrt(1.0 / H), np.sqrt(1.0 / H), (C, H))
        W = rng.uniform(-np.sqrt(1.0 / H), np.sqrt(1.0 / H), (H, H))
        return cls({"U": U.astype(dtype), "V": V.astype(dtype), "W": W.astype(dtype)}, bptt_truncate)

    @property
    def vocab_size(self) -> int:
        return self.params["V"].shape[0]

    @property
    def hidden(self) -> int:
        return self.params["W"].shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.params["W"].dtype

    # ------------------------------------------------------------------ forward

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((batch, self.hidden), dtype=self.dtype)

    def run(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """Hidden states for inputs ``x`` (B, T) from state ``h`` (B, H; zero when None): (B, T, H)."""
        U, W = self.params["U"], self.params["W"]
        B, T = x.shape
        inputs = U.T[x]  # column lookups U[:, x_t], all at once
        states = np.empty((B, T, self.hidden), dtype=self.dtype)
        h = self.initial_state(B) if h is None else h
        WT = W.T
        for t in range(T):  # the one loop that cannot go: s_t needs s_{t-1}
            h = np.tanh(inputs[:, t] + h @ WT)
            states[:, t] = h
        return states

    def forward(self, x: np.ndarray, y: np.ndarray | None = None, h: np.ndarray | None = None) -> Forward:
        """States and output probabilities from state ``h`` (zero when None); with targets ``y``, also
        log o_t[y_t], computed as shifted logit minus log-normaliser (no log of an underflowed probability)."""
        states = self.run(x, h)
        with all_blas_threads():  # the output layer: the one big product of the forward pass
            logits = states @ self.params["V"].T
        logits -= logits.max(axis=-1, keepdims=True)
        picked = None if y is None else np.take_along_axis(logits, y[:, :, None], axis=2)[:, :, 0]
        probs = np.exp(logits, out=logits)
        normaliser = probs.sum(axis=-1, keepdims=True)
        probs /= normaliser
        target_log_probs = None if y is None else picked - np.log(normaliser[:, :, 0])
        return Forward(states, probs, target_log_probs)

    def step(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One time step for a batch: (next-token probabilities (B, C), new state (B, H))."""
        h = np.tanh(self.params["U"].T[x] + h @ self.params["W"].T)
        return softmax(h @ self.params["V"].T), h

    def token_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log o_t[y_t] for every position (B, T)."""
        return self.forward(x, y).target_log_probs

    def loss(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: np.ndarray | None = None) -> float:
        """Summed cross-entropy (nats) of the batch's real tokens."""
        return float(-self.forward(x, y, h).target_log_probs[mask].sum())

    # ------------------------------------------------------------------ backward

    def backward(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, bptt_truncate: int | None = None,
                 h: np.ndarray | None = None, scale: float = 1.0) -> tuple[float, dict[str, np.ndarray], tuple]:
        """Summed loss, the gradients of ``V`` and ``W``, and the rows of ``dU.T`` for ``np.unique(x)``;
        the gradients are of ``scale`` × the loss (scaling the small output error, not the big gradients).

        ``U`` is touched only in the columns of the batch's words, so its gradient is returned in
        that compact form; ``loss_and_grads`` spreads it out, ``sgd_update`` applies it as it is.
        """
        truncate = self.bptt_truncate if bptt_truncate is None else bptt_truncate
        V, W = self.params["V"], self.params["W"]
        B, T = x.shape
        H, C = self.hidden, self.vocab_size
        fwd = self.forward(x, y, h)
        S = fwd.states
        rows = np.arange(B * T)
        flat_y = y.reshape(-1)
        d_out = fwd.probs.reshape(B * T, C)  # becomes o - onehot(y), masked, in place
        loss = float(-fwd.target_log_probs[mask].sum())
        d_out[rows, flat_y] -= 1.0
        if not mask.all():
            d_out *= mask.reshape(-1, 1)
        if scale != 1.0:
            d_out *= scale  # every gradient below is linear in the output error
        flat_S = S.reshape(B * T, H)
        with all_blas_threads():
            dV = d_out.T @ flat_S
            delta = (d_out @ V).reshape(B, T, H)
        slope = 1.0 - S * S  # tanh'(.) at each step
        delta *= slope  # error entering s_t from o_t, for every t

        if truncate >= T - 1:  # nothing is cut: one backward sweep
            total = delta
            carry = None
            for k in range(T - 1, -1, -1):
                if carry is not None:
                    total[:, k] += carry
                if k:
                    carry = (total[:, k] @ W) * slope[:, k - 1]
        else:  # each output's error travels back at most `truncate` steps
            total = delta.copy()
            chain = delta
            for lag in range(1, truncate + 1):
                # chain[:, k] is the error of output k + lag - 1 at step k; move it one step back
                chain = (chain[:, 1:] @ W) * slope[:, : T - lag]
                total[:, : T - lag] += chain

        flat_total = total.reshape(B * T, H)
        dW = total[:, 1:].reshape(-1, H).T @ S[:, :-1].reshape(-1, H)
        if h is not None:  # the first step's previous state is h, not zero
            dW += total[:, 0].T @ h
        words, where = np.unique(x.reshape(-1), return_inverse=True)
        dU_rows = np.zeros((len(words), H), dtype=self.dtype)
        np.add.at(dU_rows, where.reshape(-1), flat_total)
        return loss, {"V": dV, "W": dW}, (words, dU_rows)

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, bptt_truncate: int | None = None,
                       h: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Summed loss and the gradients of all weights (truncated BPTT, the seed's semantics)."""
        loss, grads, (words, dU_rows) = self.backward(x, y, mask, bptt_truncate, h)
        dU = np.zeros_like(self.params["U"])
        dU[:, words] = dU_rows.T
        return loss, {"U": dU, **grads}

    def sgd_update(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, learning_rate: float,
                   bptt_truncate: int | None = None, h: np.ndarray | None = None) -> float:
        """One SGD step on the summed loss, in place; returns that loss. Only the batch's columns
        of ``U`` change, exactly as a dense update with a zero gradient elsewhere would leave them."""
        loss, grads, (words, dU_rows) = self.backward(x, y, mask, bptt_truncate, h, scale=learning_rate)
        self.params["U"][:, words] -= dU_rows.T
        for name, grad in grads.items():
            self.params[name] -= grad
        return loss


def pad_batch(sentences: list[np.ndarray] | list[list[int]], pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sentences of ids → (ids (B, T), mask (B, T)), padded at the end."""
    T = max((len(s) for s in sentences), default=0)
    ids = np.full((len(sentences), T), pad, dtype=np.int64)
    mask = np.zeros((len(sentences), T), dtype=bool)
    for i, s in enumerate(sentences):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = True
    return ids, mask
