"""The vanilla RNN language model in numpy: the reference engine (seed, Part 2).

    s_t = tanh(U x_t + W s_{t-1}),   o_t = softmax(V s_t),   s_{-1} = 0

``U`` is H×C (``U x_t`` is the column ``U[:, x_t]``), ``W`` is H×H, ``V`` is C×H. No biases,
as in the seed. Beyond the seed, two options: an embedding ``E`` (D×C, so ``U`` is H×D and the
input is ``U E x_t``) and more layers (layer k ≥ 2 has ``Uk`` H×H on the state of layer k−1 and
``Wk`` H×H), with dropout on the embedding, between layers and before ``V`` while training.

Everything works on a batch of sentences padded to one length ``T`` with a mask; a batch's loss
and gradients are the sums over its sentences. Arrays keep the dtype of the weights (float64 for
checking, float32 to run). States carried between calls are (layers, B, H), as in PyTorch.

Backpropagation through time follows the seed's truncation exactly: the error at output ``t``
flows back through steps ``t, t-1, …, t - bptt_truncate`` and no further (in each layer, for the
error that layer receives from above). Instead of the seed's double loop of outer products, the
backward pass runs one loop over lags (each step one batched matrix product for all outputs at
once), or, when nothing is truncated, the usual single backward sweep; the weight gradients are
then one matrix product each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnkit.models.numpy.threads import all_blas_threads


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis; ``out=logits`` computes it in place (no vocabulary-sized temporaries)."""
    out = np.subtract(logits, logits.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def layer_names(k: int) -> tuple[str, str]:
    """The input and recurrent weight names of layer ``k`` (0-based): the seed's U, W, then U2, W2, …"""
    return ("U", "W") if k == 0 else (f"U{k + 1}", f"W{k + 1}")


@dataclass
class Forward:
    """What the forward pass keeps for the backward pass."""

    states: list[np.ndarray]  # per layer, (B, T, H): s_0 … s_{T-1}
    probs: np.ndarray  # (B, T, C): o_0 … o_{T-1}
    target_log_probs: np.ndarray | None = None  # (B, T): log o_t[y_t], when targets were given
    inputs: list[np.ndarray | None] = field(default_factory=list)  # per layer: what U multiplies (None: one-hot)
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # dropout masks (already scaled)
    h0: np.ndarray | None = None


class NumpyRNN:
    """A vanilla RNN language model: ``U`` (H×C, or H×D after an embedding ``E``), ``W`` (H×H), ``V`` (C×H)."""

    cell = "rnn"

    def __init__(self, params: dict[str, np.ndarray], bptt_truncate: int = 4, dropout: float = 0.0) -> None:
        self.params = params
        self.bptt_truncate = bptt_truncate
        self.dropout = dropout

    @classmethod
    def initialize(cls, vocab_size: int, hidden: int, *, bptt_truncate: int = 4, layers: int = 1,
                   embedding: int | None = None, dropout: float = 0.0,
                   rng: np.random.RandomState | np.random.Generator | None = None,
                   dtype: str | np.dtype = np.float64) -> NumpyRNN:
        """The seed's initialisation: uniform in ±1/√n (n = incoming connections), drawn U, V, W in
        that order from ``rng`` (numpy's global generator when None, as in the seed); then, when
        asked for, the embedding (±0.1) and the further layers."""
        rng = np.random if rng is None else rng
        C, H = vocab_size, hidden
        n_in = embedding or C
        params = {"U": rng.uniform(-np.sqrt(1.0 / n_in), np.sqrt(1.0 / n_in), (H, n_in)),
                  "V": rng.uniform(-np.sqrt(1.0 / H), np.sqrt(1.0 / H), (C, H)),
                  "W": rng.uniform(-np.sqrt(1.0 / H), np.sqrt(1.0 / H), (H, H))}
        if embedding:
            params["E"] = rng.uniform(-0.1, 0.1, (embedding, C))
        for k in range(1, layers):
            u, w = layer_names(k)
            params[u] = rng.uniform(-np.sqrt(1.0 / H), np.sqrt(1.0 / H), (H, H))
            params[w] = rng.uniform(-np.sqrt(1.0 / H), np.sqrt(1.0 / H), (H, H))
        return cls({k: v.astype(dtype) for k, v in params.items()}, bptt_truncate, dropout)

    @property
    def vocab_size(self) -> int:
        return self.params["V"].shape[0]

    @property
    def hidden(self) -> int:
        return self.params["W"].shape[0]

    @property
    def layers(self) -> int:
        return 1 + sum(1 for k in self.params if k.startswith("W") and k != "W")

    @property
    def dtype(self) -> np.dtype:
        return self.params["W"].dtype

    # ------------------------------------------------------------------ forward

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((self.layers, batch, self.hidden), dtype=self.dtype)

    def _dropout_mask(self, shape: tuple[int, ...], rng: np.random.Generator | None) -> np.ndarray | None:
        if rng is None or not self.dropout:
            return None
        keep = 1.0 - self.dropout
        return (rng.random(shape) < keep).astype(self.dtype) / keep

    def _recur(self, pre: np.ndarray, W: np.ndarray, h: np.ndarray) -> np.ndarray:
        B, T, H = pre.shape
        states = np.empty((B, T, H), dtype=self.dtype)
        WT = W.T
        for t in range(T):  # the one loop that cannot go: s_t needs s_{t-1}
            h = np.tanh(pre[:, t] + h @ WT)
            states[:, t] = h
        return states

    def _layers(self, x: np.ndarray, h: np.ndarray | None, rng: np.random.Generator | None) -> Forward:
        B, T = x.shape
        h = self.initial_state(B) if h is None else h
        fwd = Forward(states=[], probs=np.zeros(0), h0=h)
        U = self.params["U"]
        if "E" in self.params:
            embedded = self.params["E"].T[x]
            mask = self._dropout_mask(embedded.shape, rng)
            if mask is not None:
                embedded = embedded * mask
                fwd.masks["E"] = mask
            fwd.inputs.append(embedded)
            pre = embedded @ U.T
        else:
            fwd.inputs.append(None)
            pre = U.T[x]  # column lookups U[:, x_t], all at once
        for k in range(self.layers):
            u, w = layer_names(k)
            if k:
                below = fwd.states[-1]
                mask = self._dropout_mask(below.shape, rng)
                if mask is not None:
                    below = below * mask
                    fwd.masks[f"layer{k}"] = mask
                fwd.inputs.append(below)
                pre = below @ self.params[u].T
            fwd.states.append(self._recur(pre, self.params[w], h[k]))
        return fwd

    def run(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """The last layer's states (B, T, H) for inputs ``x`` (B, T) from state ``h`` (zero when None)."""
        return self._layers(x, h, None).states[-1]

    def last_state(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """The state (layers, B, H) after reading ``x``: what stream mode carries to the next window."""
        return np.stack([s[:, -1] for s in self._layers(x, h, None).states])

    def forward(self, x: np.ndarray, y: np.ndarray | None = None, h: np.ndarray | None = None,
                rng: np.random.Generator | None = None) -> Forward:
        """States and output probabilities from state ``h`` (zero when None); with targets ``y``, also
        log o_t[y_t], computed as shifted logit minus log-normaliser (no log of an underflowed
        probability). With ``rng``, dropout is applied (training)."""
        fwd = self._layers(x, h, rng)
        top = fwd.states[-1]
        mask = self._dropout_mask(top.shape, rng)
        if mask is not None:
            top = top * mask
            fwd.masks["top"] = mask
        fwd.inputs.append(top)
        with all_blas_threads():  # the output layer: the one big product of the forward pass
            logits = top @ self.params["V"].T
        logits -= logits.max(axis=-1, keepdims=True)
        picked = None if y is None else np.take_along_axis(logits, y[:, :, None], axis=2)[:, :, 0]
        probs = np.exp(logits, out=logits)
        normaliser = probs.sum(axis=-1, keepdims=True)
        probs /= normaliser
        fwd.probs = probs
        fwd.target_log_probs = None if y is None else picked - np.log(normaliser[:, :, 0])
        return fwd

    def step(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One time step for a batch: (next-token probabilities (B, C), new state (layers, B, H))."""
        fwd = self._layers(x[:, None], h, None)
        new = np.stack([s[:, 0] for s in fwd.states])
        return softmax(new[-1] @ self.params["V"].T), new

    def loss(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: np.ndarray | None = None) -> float:
        """Summed cross-entropy (nats) of the batch's real tokens."""
        return float(-self.forward(x, y, h).target_log_probs[mask].sum())

    # ------------------------------------------------------------------ backward

    def _through_time(self, delta: np.ndarray, W: np.ndarray, slope: np.ndarray, truncate: int) -> np.ndarray:
        """Error at each step's pre-activation, given the error ``delta`` arriving at each step from
        above (already times tanh'): each arrival flows back at most ``truncate`` steps."""
        B, T, H = delta.shape
        if truncate >= T - 1:  # nothing is cut: one backward sweep
            total = delta
            carry = None
            for k in range(T - 1, -1, -1):
                if carry is not None:
                    total[:, k] += carry
                if k:
                    carry = (total[:, k] @ W) * slope[:, k - 1]
            return total
        total = delta.copy()
        chain = delta
        for lag in range(1, truncate + 1):
            # chain[:, k] is the error of arrival k + lag - 1 at step k; move it one step back
            chain = (chain[:, 1:] @ W) * slope[:, : T - lag]
            total[:, : T - lag] += chain
        return total

    def backward(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, bptt_truncate: int | None = None,
                 h: np.ndarray | None = None, scale: float = 1.0,
                 rng: np.random.Generator | None = None) -> tuple[float, dict[str, np.ndarray], tuple]:
        """Summed loss, the gradients of the dense weights, and the sparse one: rows of ``dU.T``
        (one-hot input) or ``dE.T`` (embedding) for the words ``np.unique(x)``. Gradients are of
        ``scale`` × the loss (scaling the small output error, not the big gradients). With ``rng``,
        dropout is applied."""
        truncate = self.bptt_truncate if bptt_truncate is None else bptt_truncate
        V = self.params["V"]
        B, T = x.shape
        H, C = self.hidden, self.vocab_size
        fwd = self.forward(x, y, h, rng)
        rows = np.arange(B * T)
        flat_y = y.reshape(-1)
        d_out = fwd.probs.reshape(B * T, C)  # becomes o - onehot(y), masked, in place
        loss = float(-fwd.target_log_probs[mask].sum())
        d_out[rows, flat_y] -= 1.0
        if not mask.all():
            d_out *= mask.reshape(-1, 1)
        if scale != 1.0:
            d_out *= scale  # every gradient below is linear in the output error
        top = fwd.inputs[-1]
        with all_blas_threads():
            grads = {"V": d_out.T @ top.reshape(B * T, H)}
            arriving = (d_out @ V).reshape(B, T, H)
        if "top" in fwd.masks:
            arriving *= fwd.masks["top"]
        sparse_name, sparse_rows = None, None
        for k in range(self.layers - 1, -1, -1):
            u, w = layer_names(k)
            S = fwd.states[k]
            slope = 1.0 - S * S  # tanh'(.) at each step
            total = self._through_time(arriving * slope, self.params[w], slope, truncate)
            grads[w] = total[:, 1:].reshape(-1, H).T @ S[:, :-1].reshape(-1, H)
            grads[w] += total[:, 0].T @ fwd.h0[k]  # the first step's previous state (zero unless carried)
            flat_total = total.reshape(B * T, H)
            below = fwd.inputs[k]
            if below is None:  # one-hot input: U's gradient lives in the batch's columns only
                sparse_name = "U"
                sparse_rows = flat_total
                continue
            grads[u] = flat_total.T @ below.reshape(B * T, -1)
            arriving = (flat_total @ self.params[u]).reshape(B, T, -1)
            if k:
                if f"layer{k}" in fwd.masks:
                    arriving *= fwd.masks[f"layer{k}"]
            else:  # into the embedding
                if "E" in fwd.masks:
                    arriving *= fwd.masks["E"]
                sparse_name = "E"
                sparse_rows = arriving.reshape(B * T, -1)
        words, where = np.unique(x.reshape(-1), return_inverse=True)
        compact = np.zeros((len(words), sparse_rows.shape[1]), dtype=self.dtype)
        np.add.at(compact, where.reshape(-1), sparse_rows)
        return loss, grads, (sparse_name, words, compact)

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, bptt_truncate: int | None = None,
                       h: np.ndarray | None = None, rng: np.random.Generator | None = None
                       ) -> tuple[float, dict[str, np.ndarray]]:
        """Summed loss and the gradients of all weights (truncated BPTT, the seed's semantics)."""
        loss, grads, (name, words, rows) = self.backward(x, y, mask, bptt_truncate, h, rng=rng)
        dense = np.zeros_like(self.params[name])
        dense[:, words] = rows.T
        return loss, {name: dense, **grads}

    def sgd_update(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, learning_rate: float,
                   bptt_truncate: int | None = None, h: np.ndarray | None = None,
                   rng: np.random.Generator | None = None) -> float:
        """One SGD step on the summed loss, in place; returns that loss. Only the batch's columns
        of ``U`` (or ``E``) change, exactly as a dense update with a zero gradient elsewhere would."""
        loss, grads, (name, words, rows) = self.backward(x, y, mask, bptt_truncate, h, scale=learning_rate, rng=rng)
        self.params[name][:, words] -= rows.T
        for key, grad in grads.items():
            self.params[key] -= grad
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
