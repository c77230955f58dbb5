"""The encoder–decoder with attention in numpy: the reference for ``rnnkit seq2seq`` (the seeds'
attention post; Bahdanau et al. 2015, Luong et al. 2015).

The encoder — ``NumpyGated``'s bidirectional layers, their hand-written backward pass included —
reads the source into annotations a_1 … a_S (B, S, 2H). The decoder — ``NumpyGated`` again, one
layer of D = 2H units — starts from s_0 = tanh(W_init h_back + b_init), h_back the backward
direction's last state (it has read the whole source), and reads the target shifted right
(teacher forcing) into states s_t. Then, at every step at once:

    scores   e_ti = s_tᵀ a_i (dot) | s_tᵀ W a_i (general) | vᵀ tanh(Wq s_t + Wk a_i) (additive)
    weights  α_ti = softmax_i(e_ti) over the source's real positions (padding: weight 0)
    context  ctx_t = Σ_i α_ti a_i
    output   h̃_t = tanh(Wc [s_t; ctx_t] + bc),  p_t = softmax(V h̃_t + b)

With ``attention="none"``, h̃_t = tanh(Wc s_t + bc): the fixed-vector model.

With input feeding the decoder's input at step t is [embedding of y_t; h̃_{t-1}] (h̃_0 = 0), so the
forward pass goes step by step, and so does the backward pass: the error at h̃_t comes from the
output layer at t and from the decoder's input at t + 1. ``none`` then attends with fixed weights,
1/S on each real position: its context is the mean annotation, the same at every step.

The loss is the summed cross-entropy over the target's real tokens. Backward, in reverse:
∂h̃ = Vᵀ(p − y); through tanh to Wc, s_t and ctx_t; ∂α = ∂ctx aᵀ and ∂a += αᵀ ∂ctx; the softmax's
∂e = α ⊙ (∂α − Σ α ∂α); then each score's own rule; the decoder's BPTT (which ends at ∂s_0),
through the init layer to h_back, and the encoder's BPTT from ∂a.

Weights are the schema's (``rnnkit.models.schema``): ``enc.*``, ``dec.*``, ``init.*``, ``att.*``,
``out.*``; the two recurrences see their own names without the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from rnnkit.models.network import gated_names
from rnnkit.models.numpy.engine import NumpyTrainable
from rnnkit.models.numpy.gated import NumpyGated
from rnnkit.models.numpy.lm import Forward, softmax
from rnnkit.models.threads import one_blas_thread
from rnnkit.seq2seq.config import Seq2SeqConfig
from rnnkit.seq2seq.data import Seq2SeqBatch


def prefixed(params: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The weights under ``prefix``, named without it (the same arrays: updates show through)."""
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


def rows_of(state: Any, rows: Any) -> Any:
    """A decoder state's ``rows`` (on the second-to-last axis), part by part for an input-fed
    decoder's (recurrent state, h̃) pair; numpy arrays or torch tensors alike."""
    if isinstance(state, tuple):
        return tuple(rows_of(part, rows) for part in state)
    return state[..., rows, :]


def along_time(steps: list[Any], fixed: tuple[str, ...] = ()) -> Any:
    """One record of the T one-step records ``steps`` (dataclasses of (B, 1, …) arrays), joined
    along time; the fields named in ``fixed`` do not depend on the step and are taken once."""
    joined = {}
    for f in fields(steps[0]):
        first = getattr(steps[0], f.name)
        joined[f.name] = first if first is None or f.name in fixed else \
            np.concatenate([getattr(step, f.name) for step in steps], axis=1)
    return type(steps[0])(**joined)


@dataclass
class Encoded:
    """The source, encoded: what the decoder attends to, and what the backward pass needs."""

    annotations: np.ndarray  # (B, S, 2H)
    mask: np.ndarray  # (B, S), True on real tokens
    state: Any  # the decoder's initial state; with input feeding, (state, h̃_0)
    x: np.ndarray | None = None
    forward: Forward | None = None
    init: np.ndarray | None = None  # s_0 = tanh(W_init h_back + b_init)
    keys: Any = None  # what every step's scores compare with, made once (``keys``)


def selected(encoded: Encoded, rows: Any) -> Encoded:
    """The encoded sources of ``rows`` (numpy arrays or torch tensors): a beam's hypotheses
    follow their sources."""
    return Encoded(encoded.annotations[rows], encoded.mask[rows], rows_of(encoded.state, rows),
                   keys=None if encoded.keys is None else encoded.keys[rows])


@dataclass
class Head:
    """Attention, combination and output at every decoder step (what the backward pass needs)."""

    log_probs: np.ndarray  # (B, T, C)
    weights: np.ndarray | None  # α (B, T, S)
    combined: np.ndarray  # h̃ (B, T, D)
    inputs: np.ndarray  # [s; ctx] (B, T, D + 2H)
    keys: np.ndarray | None = None  # general: A Wᵀ; additive: A Wkᵀ
    hidden: np.ndarray | None = None  # additive: tanh(Wq s + Wk a) (B, T, S, A)

    def at(self, t: slice) -> Head:
        """The steps ``t`` alone."""
        return Head(*(None if v is None else v[:, t] for v in (self.log_probs, self.weights, self.combined,
                                                                 self.inputs)),
                    self.keys, None if self.hidden is None else self.hidden[:, t])


class NumpySeq2Seq:
    def __init__(self, config: Seq2SeqConfig, params: dict[str, np.ndarray]) -> None:
        self.config, self.params = config, params
        self.encoder = NumpyGated(config.encoder(), prefixed(params, "enc."))
        self.decoder = NumpyGated(config.decoder(), prefixed(params, "dec."))
        self.dtype = params["out.V"].dtype

    # ------------------------------------------------------------------ forward

    def encode(self, x: np.ndarray, mask: np.ndarray, rng: np.random.Generator | None = None) -> Encoded:
        fwd = self.encoder.layers_forward(x, None, rng, mask)
        annotations = fwd.states[-1]
        h_back = annotations[:, 0, self.config.hidden:]
        init = np.tanh(h_back @ self.params["init.W"].T + self.params["init.b"])
        state = init[None]
        if self.config.cell == "lstm":
            state = np.stack([state, np.zeros_like(state)])
        if self.config.input_feeding:
            state = (state, np.zeros_like(init))
        return Encoded(annotations, mask, state, x, fwd, init, self.keys(annotations))

    def keys(self, a: np.ndarray) -> np.ndarray | None:
        """A Wᵀ (general) or A Wkᵀ (additive), (B, S, ·): the same at every decoder step."""
        kind = self.config.attention
        return a @ self.params["att.W"].T if kind == "general" else \
            a @ self.params["att.Wk"].T if kind == "additive" else None

    def scores(self, s: np.ndarray, encoded: Encoded) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """e (B, T, S) of decoder states ``s`` (B, T, D) against the annotations, with what the
        score keeps (keys, and the additive score's hidden layer)."""
        a, kind, keys = encoded.annotations, self.config.attention, encoded.keys
        if kind == "dot":
            return s @ a.transpose(0, 2, 1), None, None
        if kind == "general":
            return s @ keys.transpose(0, 2, 1), keys, None
        hidden = np.tanh((s @ self.params["att.Wq"].T)[:, :, None, :] + keys[:, None, :, :])
        return hidden @ self.params["att.v"], keys, hidden

    def head(self, s: np.ndarray, encoded: Encoded) -> Head:
        """Attention, combination and log-probabilities for decoder states ``s`` (B, T, D)."""
        weights = keys = hidden = None
        inputs = s
        mask = encoded.mask
        if self.config.attention != "none":
            e, keys, hidden = self.scores(s, encoded)
            weights = softmax(np.where(mask[:, None, :], e, -np.inf))  # padding gets no weight
        elif self.config.input_feeding:  # the fixed context: the mean annotation
            fixed = (mask / mask.sum(axis=1, keepdims=True)).astype(s.dtype)
            weights = np.broadcast_to(fixed[:, None, :], (*s.shape[:2], mask.shape[1]))
        if weights is not None:
            inputs = np.concatenate([s, weights @ encoded.annotations], axis=2)
        combined = np.tanh(inputs @ self.params["out.Wc"].T + self.params["out.bc"])
        logits = combined @ self.params["out.V"].T + self.params["out.b"]
        log_probs = logits - np.logaddexp.reduce(logits, axis=2, keepdims=True)
        return Head(log_probs, weights, combined, inputs, keys, hidden)

    def decode(self, y_in: np.ndarray, encoded: Encoded,
               rng: np.random.Generator | None = None) -> tuple[Forward, Head]:
        """The decoder's states over the teacher-forced ``y_in`` (B, T), and its head. ``fwd.final``
        is the state after the last step (with input feeding, with h̃)."""
        if self.config.input_feeding:
            return self._decode_fed(y_in, encoded, rng)
        fwd = self.decoder.layers_forward(y_in, encoded.state, rng, None)
        return fwd, self.head(fwd.states[-1], encoded)

    def _decode_fed(self, y_in: np.ndarray, encoded: Encoded, rng: np.random.Generator | None) -> tuple[Forward, Head]:
        dec, lstm = self.decoder, self.config.cell == "lstm"
        below = dec.params["E"].T[y_in]
        state, fed = encoded.state
        fwd = Forward(states=[], final=None, h0=state)
        drop = dec._dropout_mask(below.shape, rng)
        if drop is not None:
            below = below * drop
            fwd.masks["E"] = drop
        U, W, bu, bw = (dec.params[n] for n in gated_names(0))
        h, c = (state[0, 0], state[1, 0]) if lstm else (state[0], None)
        caches, heads = [], []
        for t in range(y_in.shape[1]):  # h̃_{t-1} is step t's input: no step can start before it
            inputs = np.concatenate([below[:, t:t + 1], fed[:, None]], axis=2)
            caches.append(dec._recur(inputs @ U.T + bu, W, bw, h, c, inputs))
            h, c = caches[-1].states[:, 0], caches[-1].extra[:, 0] if lstm else None
            heads.append(self.head(caches[-1].states, encoded))
            fed = heads[-1].combined[:, 0]
        cache = along_time(caches)
        fwd.caches, fwd.states = [[cache]], [cache.states]
        fwd.final = (np.stack([h[None], c[None]]) if lstm else h[None], fed)
        return fwd, along_time(heads, fixed=("keys",))

    def step(self, tokens: np.ndarray, state: Any, encoded: Encoded) -> tuple[np.ndarray, Any, np.ndarray | None]:
        """One decoding step: log-probabilities (B, C) of the next token after ``tokens`` (B,),
        the new state, and the attention weights (B, S) (None without attention)."""
        here = Encoded(encoded.annotations, encoded.mask, state, keys=encoded.keys)
        fwd, head = self.decode(tokens[:, None], here)
        weights = None if self.config.attention == "none" else head.weights[:, 0]
        return head.log_probs[:, 0], fwd.final, weights

    def loss(self, x, x_mask, y_in, y_out, y_mask) -> float:
        _, head = self.decode(y_in, self.encode(x, x_mask))
        return -float(np.take_along_axis(head.log_probs, y_out[:, :, None], axis=2)[:, :, 0][y_mask].sum())

    # ------------------------------------------------------------------ backward

    def loss_and_grads(self, x: np.ndarray, x_mask: np.ndarray, y_in: np.ndarray, y_out: np.ndarray,
                       y_mask: np.ndarray, rng: np.random.Generator | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """The summed cross-entropy of the batch's real target tokens, and every weight's gradient."""
        P = self.params
        encoded = self.encode(x, x_mask, rng)
        fwd, head = self.decode(y_in, encoded, rng)
        picked = np.take_along_axis(head.log_probs, y_out[:, :, None], axis=2)[:, :, 0]
        loss = -float(picked[y_mask].sum())
        grads: dict[str, np.ndarray] = {}

        d_logits = np.exp(head.log_probs)
        np.put_along_axis(d_logits, y_out[:, :, None], np.take_along_axis(d_logits, y_out[:, :, None], 2) - 1, 2)
        d_logits *= y_mask[:, :, None]
        D = head.combined.shape[2]
        grads["out.V"] = d_logits.reshape(-1, d_logits.shape[2]).T @ head.combined.reshape(-1, D)
        grads["out.b"] = d_logits.sum(axis=(0, 1))
        d_combined = d_logits @ P["out.V"]  # the error at h̃ from the output layer
        d_a = np.zeros_like(encoded.annotations)
        backward = self._fed_backward if self.config.input_feeding else self._decoder_backward
        d_init = backward(y_in, encoded, fwd, head, d_combined, d_a, grads)
        d_init = d_init * (1.0 - encoded.init ** 2)
        h_back = encoded.annotations[:, 0, self.config.hidden:]
        grads["init.W"], grads["init.b"] = d_init.T @ h_back, d_init.sum(axis=0)
        d_a[:, 0, self.config.hidden:] += d_init @ P["init.W"]
        self._recurrence_backward(self.encoder, x, encoded.forward, d_a, grads, "enc.")
        return loss, grads

    def _decoder_backward(self, y_in: np.ndarray, encoded: Encoded, fwd: Forward, head: Head, d_combined: np.ndarray,
                          d_a: np.ndarray, grads: dict[str, np.ndarray]) -> np.ndarray:
        """The head's and the decoder's gradients, all steps at once (the decoder never reads h̃);
        the error at the decoder's initial state is returned, the annotations' added into ``d_a``."""
        P, D = self.params, d_combined.shape[2]
        d_pre = d_combined * (1.0 - head.combined ** 2)
        grads["out.Wc"] = d_pre.reshape(-1, D).T @ head.inputs.reshape(-1, head.inputs.shape[2])
        grads["out.bc"] = d_pre.sum(axis=(0, 1))
        d_inputs = d_pre @ P["out.Wc"]
        d_s = d_inputs[:, :, :D]
        if self.config.has_context:
            d_s = d_s + self._attention_backward(fwd.states[-1], encoded, head, d_inputs[:, :, D:], d_a, grads)
        self._recurrence_backward(self.decoder, y_in, fwd, d_s, grads, "dec.")
        return fwd.d_initial[0] if self.config.cell == "gru" else fwd.d_initial[0, 0]

    def _fed_backward(self, y_in: np.ndarray, encoded: Encoded, fwd: Forward, head: Head, d_combined: np.ndarray,
                      d_a: np.ndarray, grads: dict[str, np.ndarray]) -> np.ndarray:
        """As ``_decoder_backward``, step by step from the last: h̃_t's error is the output layer's
        at t plus what step t + 1's input sends back."""
        P, dec = self.params, self.decoder
        cache = fwd.caches[0][0]
        U, W = dec.params["U"], dec.params["W"]
        B, T, D = d_combined.shape
        E = self.config.embedding
        d_pre = np.empty_like(d_combined)  # at tanh(Wc [s; ctx] + bc)'s pre-activation
        d_gates = np.empty((B, T, U.shape[0]), d_combined.dtype)
        d_recurrent = d_gates if self.config.cell == "lstm" else np.empty_like(d_gates)
        d_below = np.empty((B, T, E), d_combined.dtype)
        d_fed, dh, dc = np.zeros((B, D), d_combined.dtype), np.zeros((B, D), d_combined.dtype), None
        for t in range(T - 1, -1, -1):
            now = slice(t, t + 1)
            d_pre[:, t] = (d_combined[:, t] + d_fed) * (1.0 - head.combined[:, t] ** 2)
            d_inputs = d_pre[:, now] @ P["out.Wc"]
            step: dict[str, np.ndarray] = {}
            d_s = d_inputs[:, 0, :D] + self._attention_backward(cache.states[:, now], encoded, head.at(now),
                                                                 d_inputs[:, :, D:], d_a, step)[:, 0]
            for name, g in step.items():
                grads[name] = grads[name] + g if name in grads else g
            d_gates[:, t], d_recurrent[:, t], dh, dc = dec.step_back(cache, (slice(None), t), W, d_s + dh, dc)
            d_x = d_gates[:, t] @ U
            d_below[:, t], d_fed = d_x[:, :E], d_x[:, E:]
        def flat(a: np.ndarray) -> np.ndarray:
            return a.reshape(B * T, -1)

        grads["out.Wc"], grads["out.bc"] = flat(d_pre).T @ flat(head.inputs), d_pre.sum(axis=(0, 1))
        grads["dec.U"], grads["dec.bu"] = flat(d_gates).T @ flat(cache.inputs), d_gates.sum(axis=(0, 1))
        grads["dec.W"], grads["dec.bw"] = flat(d_recurrent).T @ flat(cache.previous), d_recurrent.sum(axis=(0, 1))
        embedding = np.zeros_like(dec.params["E"])
        np.add.at(embedding.T, y_in.ravel(), flat(d_below * fwd.masks.get("E", 1.0)))
        grads["dec.E"] = embedding
        return dh  # the initial cell (LSTM) is a constant zero

    def _attention_backward(self, s: np.ndarray, encoded: Encoded, head: Head, d_ctx: np.ndarray,
                            d_a: np.ndarray, grads: dict[str, np.ndarray]) -> np.ndarray:
        """From the error at the context vectors to ∂s (returned), ∂a (added into ``d_a``) and
        the score's weights' gradients."""
        a, alpha, kind = encoded.annotations, head.weights, self.config.attention
        d_a += alpha.transpose(0, 2, 1) @ d_ctx
        if kind == "none":  # fixed weights: the context does not depend on the state
            return np.zeros_like(s)
        d_alpha = d_ctx @ a.transpose(0, 2, 1)
        d_e = alpha * (d_alpha - (alpha * d_alpha).sum(axis=2, keepdims=True))  # 0 on padding: α is
        if kind == "dot":
            d_a += d_e.transpose(0, 2, 1) @ s
            return d_e @ a
        if kind == "general":
            d_keys = d_e.transpose(0, 2, 1) @ s  # (B, S, D)
            grads["att.W"] = d_keys.reshape(-1, d_keys.shape[2]).T @ a.reshape(-1, a.shape[2])
            d_a += d_keys @ self.params["att.W"]
            return d_e @ head.keys
        grads["att.v"] = np.einsum("bts,btsa->a", d_e, head.hidden)
        d_hidden = d_e[..., None] * self.params["att.v"] * (1.0 - head.hidden ** 2)  # (B, T, S, A)
        d_query, d_keys = d_hidden.sum(axis=2), d_hidden.sum(axis=1)
        A = d_query.shape[2]
        grads["att.Wq"] = d_query.reshape(-1, A).T @ s.reshape(-1, s.shape[2])
        grads["att.Wk"] = d_keys.reshape(-1, A).T @ a.reshape(-1, a.shape[2])
        d_a += d_keys @ self.params["att.Wk"]
        return d_query @ self.params["att.Wq"]

    @staticmethod
    def _recurrence_backward(net: NumpyGated, x: np.ndarray, fwd: Forward, arriving: np.ndarray,
                             grads: dict[str, np.ndarray], prefix: str) -> None:
        """A recurrence's weights' gradients, under ``prefix``; its embedding's, word by word."""
        part: dict[str, np.ndarray] = {}
        name, rows = net.layers_backward(x, fwd, arriving, part, 0)
        embedding = np.zeros_like(net.params[name])
        np.add.at(embedding.T, x.ravel(), rows)
        part[name] = embedding
        grads.update({prefix + k: v for k, v in part.items()})


class NumpySeq2SeqEngine(NumpyTrainable):
    """An encoder–decoder."""

    def __init__(self, config: Seq2SeqConfig, params: dict[str, np.ndarray], **options) -> None:
        super().__init__(config, params, **options)
        self.model = NumpySeq2Seq(config, params)

    def train_step(self, batch: Seq2SeqBatch, lr: float, scale: float, carry: None = None) -> tuple[float, None]:
        with one_blas_thread():
            loss, grads = self.model.loss_and_grads(*batch.arrays, rng=self.rng)
            self._update(grads, lr, scale)
        return loss, None

    def loss(self, batch: Seq2SeqBatch, carry: None = None) -> tuple[float, None]:
        with one_blas_thread():
            return self.model.loss(*batch.arrays), None

    def encode(self, x: np.ndarray, mask: np.ndarray) -> Encoded:
        with one_blas_thread():
            return self.model.encode(x, mask)

    def step(self, tokens: np.ndarray, state: Any, encoded: Encoded, allowed: np.ndarray | None = None):
        if allowed is not None:
            encoded = replace(encoded, mask=encoded.mask & allowed)
        with one_blas_thread():
            return self.model.step(tokens, state, encoded)

    def select(self, state: Any, encoded: Encoded, rows: np.ndarray) -> tuple[Any, Encoded]:
        return rows_of(state, rows), selected(encoded, rows)
