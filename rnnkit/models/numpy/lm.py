"""What every numpy language model shares: the output layer, the loss and the update.

A model is a config (``rnnkit.models.network.Network``) and its weights under canonical names.
A subclass supplies the recurrent layers — ``layers_forward`` (states per layer and the last
state) and ``layers_backward`` (from the error arriving at the top layer's states to the
weights' gradients) — and one step back through time, ``step_back``, which the vanishing-gradient
analysis uses too. Encoders (the ranker's) use the layers alone, without the output layer. Everything works on a batch of sentences padded to one length ``T`` with a
mask; a batch's loss and gradients are the sums over its real tokens. Arrays keep the dtype of
the weights (float64 for checking, float32 to run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnkit.models.network import Network
from rnnkit.models.numpy.adaptive import AdaptiveSoftmax
from rnnkit.models.numpy.softmax import softmax, softmax_at_targets
from rnnkit.models.schema import param_spec
from rnnkit.models.threads import all_blas_threads


@dataclass
class Forward:
    """What the forward pass keeps for the backward pass."""

    states: list[np.ndarray]  # per layer, (B, T, width): what the layer outputs at each step
    final: np.ndarray  # the state after the last step: what stream mode carries on
    h0: np.ndarray  # the state before the first step
    inputs: list[np.ndarray | None] = field(default_factory=list)  # per layer: what U multiplies (None: one-hot)
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # dropout masks (already scaled)
    caches: list[Any] = field(default_factory=list)  # per layer: what the subclass's backward needs
    probs: np.ndarray | None = None  # (B, T, C): o_0 … o_{T-1}
    target_log_probs: np.ndarray | None = None  # (B, T): log o_t[y_t], when targets were given
    d_initial: np.ndarray | None = None  # after a gated backward pass: the error at h0 (an encoder–decoder's link)
    output: Any = None  # an adaptive softmax's forward pass (it keeps no (B, T, C) probabilities)


@dataclass
class Gradients:
    """A backward pass: the summed loss, dense gradients, the sparse one (name, words, rows of its
    transpose; None when there is none) and the state after the last step."""

    loss: float
    grads: dict[str, np.ndarray]
    sparse: tuple[str, np.ndarray, np.ndarray] | None
    final: np.ndarray

    def dense(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every weight's gradient, the sparse one written out in full (zero for the other words)."""
        if self.sparse is not None:
            name, words, rows = self.sparse
            self.grads[name] = np.zeros_like(params[name])
            self.grads[name][:, words] = rows.T
            self.sparse = None
        return self.grads


class NumpyLM:
    """The output layer ``softmax(V h + c)`` (``V`` C×width, or ``Eᵀ`` when tied; ``c`` when the
    cell has an output bias), or an adaptive softmax (config ``cutoffs``), on top of a subclass's
    recurrent layers."""

    def __init__(self, config: Network, params: dict[str, np.ndarray]) -> None:
        self.config = config
        self.params = params
        self.dropout = config.dropout
        self.bptt_truncate = config.bptt_truncate  # the rnn's; the tutorial's interface may change it
        # What the output layer is made of, from the config (its schema), never from the weights given.
        spec = param_spec(config)
        self.tied, self.output_bias, self.embedded = "V" not in spec, "c" in spec, "E" in spec
        self.adaptive = AdaptiveSoftmax(config, params) if config.cutoffs else None
        self.projected = "P" in spec  # the top states projected to a narrower width before the output layer

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def hidden(self) -> int:
        return self.config.hidden

    @property
    def layers(self) -> int:
        return self.config.layers

    @property
    def cell(self) -> str:
        return self.config.cell

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.params.values())).dtype

    # ------------------------------------------------------------------ what a subclass supplies

    def initial_state(self, batch: int) -> np.ndarray:
        raise NotImplementedError

    def layers_forward(self, x: np.ndarray, h: np.ndarray | None, rng: np.random.Generator | None,
                mask: np.ndarray | None) -> Forward:
        raise NotImplementedError

    def layers_backward(self, x: np.ndarray, fwd: Forward, arriving: np.ndarray, grads: dict[str, np.ndarray],
                         truncate: int) -> tuple[str, np.ndarray] | None:
        """Add the recurrent layers' gradients to ``grads``; return the input lookup's (name, rows
        (B·T, width)) for ``sparse_gradient``, or None."""
        raise NotImplementedError

    def step_back(self, cache: Any, index, W: np.ndarray, dh: np.ndarray, dc: np.ndarray | None):
        """One step of backpropagation through time at positions ``index`` of a layer's ``cache``:
        from the error at h_t (and c_t) to (error at the pre-activations, input side; the same,
        recurrent side; error at h_{t-1}; at c_{t-1})."""
        raise NotImplementedError

    def top_layer(self, fwd: Forward) -> tuple[Any, np.ndarray]:
        """What ``step_back`` needs of the top layer, and its recurrent matrix."""
        raise NotImplementedError

    # ------------------------------------------------------------------ forward

    def _dropout_mask(self, shape: tuple[int, ...], rng: np.random.Generator | None) -> np.ndarray | None:
        if rng is None or not self.dropout:
            return None
        keep = 1.0 - self.dropout
        return (rng.random(shape) < keep).astype(self.dtype) / keep

    def project(self, top: np.ndarray) -> np.ndarray:
        """What the output layer reads: the top states, projected by ``P`` when the model has it."""
        if not self.projected:
            return top
        with all_blas_threads():
            return top @ self.params["P"].T

    def output_matrix(self) -> np.ndarray:
        """``V`` (C×width), or ``Eᵀ`` when input and output embeddings are tied."""
        return self.params["E"].T if self.tied else self.params["V"]

    def forward(self, x: np.ndarray, y: np.ndarray | None = None, h: np.ndarray | None = None,
                rng: np.random.Generator | None = None, mask: np.ndarray | None = None) -> Forward:
        """States and output probabilities from state ``h`` (zero when None); with targets ``y``, also
        log o_t[y_t], computed as shifted logit minus log-normaliser (no log of an underflowed
        probability). With ``rng``, dropout is applied (training). ``mask`` (B, T) tells a
        bidirectional encoder where each row ends."""
        fwd = self.layers_forward(x, h, rng, mask)
        top = fwd.states[-1]
        drop = self._dropout_mask(top.shape, rng)
        if drop is not None:
            top = top * drop
            fwd.masks["top"] = drop
        if self.projected:
            fwd.inputs.append(top)  # what P multiplies
            top = self.project(top)
        fwd.inputs.append(top)
        if self.adaptive is not None:
            return self._adaptive_forward(fwd, top, y)
        with all_blas_threads():  # the output layer: the one big product of the forward pass
            logits = top @ self.output_matrix().T
        if self.output_bias:
            logits += self.params["c"]
        if y is None:
            fwd.probs = softmax(logits, out=logits)
        else:
            B, T, C = logits.shape
            probs, target_log_probs = softmax_at_targets(logits.reshape(B * T, C), y.reshape(-1))
            fwd.probs, fwd.target_log_probs = probs.reshape(B, T, C), target_log_probs.reshape(B, T)
        return fwd

    def _adaptive_forward(self, fwd: Forward, top: np.ndarray, y: np.ndarray | None) -> Forward:
        B, T, width = top.shape
        if y is None:
            fwd.probs = np.exp(self.adaptive.log_probs(top.reshape(B * T, width))).reshape(B, T, -1)
        else:
            target_log_probs, fwd.output = self.adaptive.forward(top.reshape(B * T, width), y.reshape(-1))
            fwd.target_log_probs = target_log_probs.reshape(B, T)
        return fwd

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log o_t[y_t] (B, T) from a zero state."""
        return self.forward(x, y).target_log_probs

    def step(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One time step for a batch: (next-token probabilities (B, C), new state)."""
        probs, _, final = self.step_states(x, h)
        return probs, final

    def step_states(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One time step: next-token probabilities (B, C), the top layer's state (B, width) the
        output layer read, and the new state."""
        fwd = self.layers_forward(x[:, None], h, None, None)
        top = self.project(fwd.states[-1][:, 0])
        if self.adaptive is not None:
            return np.exp(self.adaptive.log_probs(top)), top, fwd.final
        logits = top @ self.output_matrix().T
        if self.output_bias:
            logits += self.params["c"]
        return softmax(logits, out=logits), top, fwd.final

    def loss(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: np.ndarray | None = None) -> float:
        """Summed cross-entropy (nats) of the batch's real tokens."""
        return self.loss_and_state(x, y, mask, h)[0]

    def loss_and_state(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray,
                       h: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Summed cross-entropy and the state after the last step."""
        fwd = self.forward(x, y, h, mask=mask)
        return float(-fwd.target_log_probs[mask].sum()), fwd.final

    # ------------------------------------------------------------------ backward

    def backward(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, *, h: np.ndarray | None = None,
                 scale: float = 1.0, rng: np.random.Generator | None = None,
                 bptt_truncate: int | None = None) -> Gradients:
        """The summed loss and the gradients of ``scale`` × the loss (scaling the small output error,
        not the big gradients). The input lookup's gradient (``U`` one-hot, or ``E``) is sparse: rows
        for the batch's words only. With ``rng``, dropout is applied."""
        truncate = self.bptt_truncate if bptt_truncate is None else bptt_truncate
        fwd = self.forward(x, y, h, rng, mask)
        loss = float(-fwd.target_log_probs[mask].sum())
        grads, arriving = self._output_backward(fwd, y, mask, scale)
        if self.projected:  # back through top @ Pᵀ
            below = fwd.inputs[-2]
            with all_blas_threads():
                grads["P"] = arriving.reshape(-1, arriving.shape[-1]).T @ below.reshape(-1, below.shape[-1])
                arriving = arriving @ self.params["P"]
        if "top" in fwd.masks:
            arriving *= fwd.masks["top"]
        lookup = self.layers_backward(x, fwd, arriving, grads, truncate)
        sparse = None if lookup is None else sparse_gradient(x, *lookup, grads, self.dtype)
        return Gradients(loss, grads, sparse, fwd.final)

    def _output_backward(self, fwd: Forward, y: np.ndarray, mask: np.ndarray,
                         scale: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The output layer's gradients (of ``scale`` × the loss) and the error arriving at the top states."""
        B, T = y.shape
        if self.adaptive is not None:
            grads, d_top = self.adaptive.backward(fwd.output, mask.reshape(-1).astype(self.dtype) * scale)
            return grads, d_top.reshape(B, T, -1)
        d_out = fwd.probs.reshape(B * T, -1)  # becomes o - onehot(y), masked, in place
        d_out[np.arange(B * T), y.reshape(-1)] -= 1.0
        if not mask.all():
            d_out *= mask.reshape(-1, 1)
        if scale != 1.0:
            d_out *= scale  # every gradient below is linear in the output error
        top = fwd.inputs[-1].reshape(B * T, -1)
        with all_blas_threads():
            grads = {"E": top.T @ d_out} if self.tied else {"V": d_out.T @ top}  # tied: lands on E
            arriving = (d_out @ self.output_matrix()).reshape(B, T, -1)
        if self.output_bias:
            grads["c"] = d_out.sum(axis=0)
        return grads, arriving

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, *, h: np.ndarray | None = None,
                       rng: np.random.Generator | None = None,
                       bptt_truncate: int | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Summed loss and the dense gradients of every weight."""
        result = self.backward(x, y, mask, h=h, rng=rng, bptt_truncate=bptt_truncate)
        return result.loss, result.dense(self.params)

    def sgd_update(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, learning_rate: float, *,
                   h: np.ndarray | None = None, rng: np.random.Generator | None = None,
                   bptt_truncate: int | None = None) -> tuple[float, np.ndarray]:
        """One SGD step on the summed loss, in place; the loss and the state after the last step.
        Only the batch's columns of ``U`` (or ``E``) change, exactly as a dense update with a zero
        gradient elsewhere would."""
        result = self.backward(x, y, mask, h=h, scale=learning_rate, rng=rng, bptt_truncate=bptt_truncate)
        if result.sparse is not None:
            name, words, rows = result.sparse
            self.params[name][:, words] -= rows.T
        for key, grad in result.grads.items():
            self.params[key] -= grad
        return result.loss, result.final


def sparse_gradient(x: np.ndarray, name: str, rows: np.ndarray, grads: dict[str, np.ndarray],
                    dtype) -> tuple[str, np.ndarray, np.ndarray] | None:
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
