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

from rnnkit.errors import RnnkitError
from rnnkit.models.numpy.threads import all_blas_threads


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis; ``out=logits`` computes it in place (no vocabulary-sized temporaries)."""
    out = np.subtract(logits, logits.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def check_tie(tie: bool, embedding: int | None, width: int) -> None:
    """Tied embeddings use ``Eᵀ`` as the output matrix, so the embedding must be as wide as the top layer."""
    if tie and embedding != width:
        raise RnnkitError(f"--tie needs the embedding as wide as the hidden layer's output: --embedding {width} "
                          f"(got {embedding})")


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
    final: np.ndarray | None = None  # the state after the last step: what stream mode carries on


class NumpyRNN:
    """A vanilla RNN language model: ``U`` (H×C, or H×D after an embedding ``E``), ``W`` (H×H), ``V`` (C×H)."""

    cell = "rnn"

    def __init__(self, params: dict[str, np.ndarray], bptt_truncate: int = 4, dropout: float = 0.0,
                 activation: str = "tanh") -> None:
        self.params = params
        self.bptt_truncate = bptt_truncate
        self.dropout = dropout
        self.activation = activation  # tanh (the seed's); relu shows exploding gradients (rnnkit vanishing)
        self.final_state: np.ndarray | None = None  # after the last step of the latest loss or backward

    @classmethod
    def initialize(cls, vocab_size: int, hidden: int, *, bptt_truncate: int = 4, layers: int = 1,
                   embedding: int | None = None, dropout: float = 0.0, tie: bool = False,
                   rng: np.random.RandomState | np.random.Generator | None = None,
                   dtype: str | np.dtype = np.float64) -> NumpyRNN:
        """The seed's initialisation: uniform in ±1/√n (n = incoming connections), drawn U, V, W in
        that order from ``rng`` (numpy's global generator when None, as in the seed); then, when
        asked for, the embedding (±0.1) and the further layers. ``tie`` drops ``V`` for ``Eᵀ``."""
        check_tie(tie, embedding, hidden)
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
        if tie:
            del params["V"]
        return cls({k: v.astype(dtype) for k, v in params.items()}, bptt_truncate, dropout)

    @property
    def vocab_size(self) -> int:
        return self.params["E" if "E" in self.params else "U"].shape[1]

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
            h = pre[:, t] + h @ WT
            h = np.tanh(h, out=h) if self.activation == "tanh" else np.maximum(h, 0.0, out=h)
            states[:, t] = h
        return states

    def _layers(self, x: np.ndarray, h: np.ndarray | None, rng: np.random.Generator | None,
                mask: np.ndarray | None = None) -> Forward:
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
        fwd.final = np.stack([s[:, -1] for s in fwd.states])
        return fwd

    def run(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """The last layer's states (B, T, H) for inputs ``x`` (B, T) from state ``h`` (zero when None)."""
        return self._layers(x, h, None).states[-1]

    def last_state(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """The state (layers, B, H) after reading ``x``: what stream mode carries to the next window."""
        return self._layers(x, h, None).final

    def forward(self, x: np.ndarray, y: np.ndarray | None = None, h: np.ndarray | None = None,
                rng: np.random.Generator | None = None, mask: np.ndarray | None = None) -> Forward:
        """States and output probabilities from state ``h`` (zero when None); with targets ``y``, also
        log o_t[y_t], computed as shifted logit minus log-normaliser (no log of an underflowed
        probability). With ``rng``, dropout is applied (training). ``mask`` (B, T) tells a
        bidirectional encoder where each row ends."""
        fwd = self._layers(x, h, rng, mask)
        top = fwd.states[-1]
        mask = self._dropout_mask(top.shape, rng)
        if mask is not None:
            top = top * mask
            fwd.masks["top"] = mask
        fwd.inputs.append(top)
        with all_blas_threads():  # the output layer: the one big product of the forward pass
            logits = top @ self.output_matrix().T
        if "c" in self.params:
            logits += self.params["c"]
        logits -= logits.max(axis=-1, keepdims=True)
        picked = None if y is None else np.take_along_axis(logits, y[:, :, None], axis=2)[:, :, 0]
        probs = np.exp(logits, out=logits)
        normaliser = probs.sum(axis=-1, keepdims=True)
        probs /= normaliser
        fwd.probs = probs
        fwd.target_log_probs = None if y is None else picked - np.log(normaliser[:, :, 0])
        return fwd

    def output_matrix(self) -> np.ndarray:
        """``V`` (C×H), or ``Eᵀ`` when input and output embeddings are tied."""
        return self.params["V"] if "V" in self.params else self.params["E"].T

    def _output_backward(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h, scale: float,
                         rng) -> tuple[Forward, float, dict[str, np.ndarray], np.ndarray]:
        """Forward, then the output layer's backward: the loss, the output weights' gradients and the
        error arriving at the top layer's states (B, T, H)."""
        fwd = self.forward(x, y, h, rng, mask)
        B, T = x.shape
        C = self.vocab_size
        d_out = fwd.probs.reshape(B * T, C)  # becomes o - onehot(y), masked, in place
        loss = float(-fwd.target_log_probs[mask].sum())
        d_out[np.arange(B * T), y.reshape(-1)] -= 1.0
        if not mask.all():
            d_out *= mask.reshape(-1, 1)
        if scale != 1.0:
            d_out *= scale  # every gradient below is linear in the output error
        top = fwd.inputs[-1]
        with all_blas_threads():
            if "V" in self.params:
                grads = {"V": d_out.T @ top.reshape(B * T, -1)}
            else:  # tied: the output layer's gradient lands on E (D×C)
                grads = {"E": top.reshape(B * T, -1).T @ d_out}
            arriving = (d_out @ self.output_matrix()).reshape(B, T, -1)
        if "c" in self.params:
            grads["c"] = d_out.sum(axis=0)
        if "top" in fwd.masks:
            arriving *= fwd.masks["top"]
        return fwd, loss, grads, arriving

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log o_t[y_t] (B, T) from a zero state."""
        return self.forward(x, y).target_log_probs

    def step(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One time step for a batch: (next-token probabilities (B, C), new state (layers, B, H))."""
        fwd = self._layers(x[:, None], h, None)
        logits = fwd.states[-1][:, 0] @ self.output_matrix().T
        if "c" in self.params:
            logits += self.params["c"]
        return softmax(logits, out=logits), fwd.final

    def loss(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: np.ndarray | None = None) -> float:
        """Summed cross-entropy (nats) of the batch's real tokens. Like ``backward``, it leaves the
        state after the last step in ``self.final_state``."""
        fwd = self.forward(x, y, h, mask=mask)
        self.final_state = fwd.final
        return float(-fwd.target_log_probs[mask].sum())

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
        B, T = x.shape
        H = self.hidden
        fwd, loss, grads, arriving = self._output_backward(x, y, mask, h, scale, rng)
        self.final_state = fwd.final  # stream mode carries it on (computed with the dropout of this pass)
        sparse_name, sparse_rows = None, None
        for k in range(self.layers - 1, -1, -1):
            u, w = layer_names(k)
            S = fwd.states[k]
            slope = self._slope(S)
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
        return loss, grads, sparse_gradient(x, sparse_name, sparse_rows, grads, self.dtype)

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, bptt_truncate: int | None = None,
                       h: np.ndarray | None = None, rng: np.random.Generator | None = None
                       ) -> tuple[float, dict[str, np.ndarray]]:
        """Summed loss and the gradients of all weights (truncated BPTT, the seed's semantics)."""
        loss, grads, sparse = self.backward(x, y, mask, bptt_truncate, h, rng=rng)
        if sparse is not None:
            name, words, rows = sparse
            dense = np.zeros_like(self.params[name])
            dense[:, words] = rows.T
            grads[name] = dense
        return loss, grads

    def sgd_update(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, learning_rate: float,
                   bptt_truncate: int | None = None, h: np.ndarray | None = None,
                   rng: np.random.Generator | None = None) -> float:
        """One SGD step on the summed loss, in place; returns that loss. Only the batch's columns
        of ``U`` (or ``E``) change, exactly as a dense update with a zero gradient elsewhere would."""
        loss, grads, sparse = self.backward(x, y, mask, bptt_truncate, h, scale=learning_rate, rng=rng)
        if sparse is not None:
            name, words, rows = sparse
            self.params[name][:, words] -= rows.T
        for key, grad in grads.items():
            self.params[key] -= grad
        return loss

    # ------------------------------------------------------------------ vanishing gradients

    def top_cache(self, fwd: Forward):
        """What ``_step_back`` needs of the top layer, and its recurrent matrix."""
        return fwd.states[-1], self.params[layer_names(self.layers - 1)[1]]

    def _slope(self, states: np.ndarray) -> np.ndarray:
        """The activation's derivative, from its output: tanh' = 1 − s², relu' = [s > 0]."""
        return 1.0 - states * states if self.activation == "tanh" else (states > 0).astype(states.dtype)

    def _step_back(self, states: np.ndarray, index, W: np.ndarray, dh: np.ndarray, dc=None):
        """One step back through time at positions ``index``: error at s_t → at the pre-activation
        (input and recurrent side alike) and at s_{t-1}."""
        d_pre = dh * self._slope(states[index])
        return d_pre, d_pre, d_pre @ W, None

    def state_gradients(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, distance: int) -> np.ndarray:
        """Norms of ∂L_t/∂s_{t−k} (the top layer's state) for k = 0 … ``distance``, each loss L_t
        alone: (N, distance + 1) for the N real outputs t with t ≥ ``distance``. Full BPTT."""
        fwd = self.forward(x, y, mask=mask)
        rows, ends = np.nonzero(mask & (np.arange(x.shape[1])[None, :] >= distance))
        error = fwd.probs[rows, ends]  # o_t − onehot(y_t) for each chosen L_t
        error[np.arange(len(rows)), y[rows, ends]] -= 1.0
        if "top" in fwd.masks:
            error *= fwd.masks["top"][rows, ends]
        with all_blas_threads():
            dh = error @ self.output_matrix()  # ∂L_t/∂s_t
        cache, W = self.top_cache(fwd)
        dc = None
        norms = np.empty((len(rows), distance + 1))
        for k in range(distance + 1):
            norms[:, k] = np.linalg.norm(dh, axis=1)
            if k < distance:
                _, _, dh, dc = self._step_back(cache, (rows, ends - k), W, dh, dc)
        return norms


def sparse_gradient(x: np.ndarray, name: str, rows: np.ndarray, grads: dict[str, np.ndarray], dtype) -> tuple | None:
    """The gradient of the input lookup (``U`` one-hot, or ``E``) for the batch's words only:
    (name, words, rows of its transpose). When that weight also has a dense gradient (tied
    embeddings), the rows are added into it instead and None is returned."""
    words, where = np.unique(x.reshape(-1), return_inverse=True)
    compact = np.zeros((len(words), rows.shape[1]), dtype=dtype)
    np.add.at(compact, where.reshape(-1), rows)
    if name in grads:
        grads[name][:, words] += compact.T
        return None
    return name, words, compact


def pad_batch(sentences: list[np.ndarray] | list[list[int]], pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sentences of ids → (ids (B, T), mask (B, T)), padded at the end."""
    T = max((len(s) for s in sentences), default=0)
    ids = np.full((len(sentences), T), pad, dtype=np.int64)
    mask = np.zeros((len(sentences), T), dtype=bool)
    for i, s in enumerate(sentences):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = True
    return ids, mask
