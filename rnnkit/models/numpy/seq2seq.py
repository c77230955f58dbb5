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

With ``attention="none"``, h̃_t = tanh(Wc s_t + bc): the fixed-vector model. The loss is the summed
cross-entropy over the target's real tokens. Backward, in reverse: ∂h̃ = Vᵀ(p − y); through tanh
to Wc, s_t and ctx_t; ∂α = ∂ctx aᵀ and ∂a += αᵀ ∂ctx; the softmax's ∂e = α ⊙ (∂α − Σ α ∂α);
then each score's own rule; the decoder's BPTT (which ends at ∂s_0), through the init layer to
h_back, and the encoder's BPTT from ∂a.

Weights are the schema's (``rnnkit.models.schema``): ``enc.*``, ``dec.*``, ``init.*``, ``att.*``,
``out.*``; the two recurrences see their own names without the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.models.config import Seq2SeqConfig
from rnnkit.models.numpy.gated import NumpyGated
from rnnkit.models.numpy.lm import Forward, softmax


def prefixed(params: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The weights under ``prefix``, named without it (the same arrays: updates show through)."""
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


@dataclass
class Encoded:
    """The source, encoded: what the decoder attends to, and what the backward pass needs."""

    annotations: np.ndarray  # (B, S, 2H)
    mask: np.ndarray  # (B, S), True on real tokens
    state: np.ndarray  # the decoder's initial state
    x: np.ndarray | None = None
    forward: Forward | None = None
    init: np.ndarray | None = None  # s_0 = tanh(W_init h_back + b_init)


@dataclass
class Head:
    """Attention, combination and output at every decoder step (what the backward pass needs)."""

    log_probs: np.ndarray  # (B, T, C)
    weights: np.ndarray | None  # α (B, T, S)
    combined: np.ndarray  # h̃ (B, T, D)
    inputs: np.ndarray  # [s; ctx] (B, T, D + 2H)
    keys: np.ndarray | None = None  # general: A Wᵀ; additive: A Wkᵀ
    hidden: np.ndarray | None = None  # additive: tanh(Wq s + Wk a) (B, T, S, A)


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
        return Encoded(annotations, mask, state, x, fwd, init)

    def scores(self, s: np.ndarray, encoded: Encoded) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """e (B, T, S) of decoder states ``s`` (B, T, D) against the annotations, with what the
        score keeps (keys, and the additive score's hidden layer)."""
        a, kind = encoded.annotations, self.config.attention
        if kind == "dot":
            return s @ a.transpose(0, 2, 1), None, None
        if kind == "general":
            keys = a @ self.params["att.W"].T
            return s @ keys.transpose(0, 2, 1), keys, None
        keys = a @ self.params["att.Wk"].T  # (B, S, A)
        hidden = np.tanh((s @ self.params["att.Wq"].T)[:, :, None, :] + keys[:, None, :, :])
        return hidden @ self.params["att.v"], keys, hidden

    def head(self, s: np.ndarray, encoded: Encoded) -> Head:
        """Attention, combination and log-probabilities for decoder states ``s`` (B, T, D)."""
        weights = keys = hidden = None
        inputs = s
        if self.config.attention != "none":
            e, keys, hidden = self.scores(s, encoded)
            e = np.where(encoded.mask[:, None, :], e, -np.inf)  # padding gets no weight
            weights = softmax(e)
            inputs = np.concatenate([s, weights @ encoded.annotations], axis=2)
        combined = np.tanh(inputs @ self.params["out.Wc"].T + self.params["out.bc"])
        logits = combined @ self.params["out.V"].T + self.params["out.b"]
        log_probs = logits - np.logaddexp.reduce(logits, axis=2, keepdims=True)
        return Head(log_probs, weights, combined, inputs, keys, hidden)

    def decode(self, y_in: np.ndarray, encoded: Encoded,
               rng: np.random.Generator | None = None) -> tuple[Forward, Head]:
        fwd = self.decoder.layers_forward(y_in, encoded.state, rng, None)
        return fwd, self.head(fwd.states[-1], encoded)

    def step(self, tokens: np.ndarray, state: np.ndarray, encoded: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One decoding step: log-probabilities (B, C) of the next token after ``tokens`` (B,),
        the new state, and the attention weights (B, S)."""
        fwd = self.decoder.layers_forward(tokens[:, None], state, None, None)
        head = self.head(fwd.states[-1], encoded)
        weights = None if head.weights is None else head.weights[:, 0]
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
        d_pre = (d_logits @ P["out.V"]) * (1.0 - head.combined ** 2)
        grads["out.Wc"] = d_pre.reshape(-1, D).T @ head.inputs.reshape(-1, head.inputs.shape[2])
        grads["out.bc"] = d_pre.sum(axis=(0, 1))
        d_inputs = d_pre @ P["out.Wc"]
        d_s = d_inputs[:, :, :D]
        d_a = np.zeros_like(encoded.annotations)
        if self.config.attention != "none":
            d_s = d_s + self._attention_backward(fwd.states[-1], encoded, head, d_inputs[:, :, D:], d_a, grads)

        part: dict[str, np.ndarray] = {}
        self._recurrence_backward(self.decoder, y_in, fwd, d_s, part, "dec.")
        d_init = fwd.d_initial[0] if self.config.cell == "gru" else fwd.d_initial[0, 0]
        d_init = d_init * (1.0 - encoded.init ** 2)
        h_back = encoded.annotations[:, 0, self.config.hidden:]
        grads["init.W"], grads["init.b"] = d_init.T @ h_back, d_init.sum(axis=0)
        d_a[:, 0, self.config.hidden:] += d_init @ P["init.W"]
        self._recurrence_backward(self.encoder, x, encoded.forward, d_a, part, "enc.")
        grads.update(part)
        return loss, grads

    def _attention_backward(self, s: np.ndarray, encoded: Encoded, head: Head, d_ctx: np.ndarray,
                            d_a: np.ndarray, grads: dict[str, np.ndarray]) -> np.ndarray:
        """From the error at the context vectors to ∂s (returned), ∂a (added into ``d_a``) and
        the score's weights' gradients."""
        a, alpha, kind = encoded.annotations, head.weights, self.config.attention
        d_alpha = d_ctx @ a.transpose(0, 2, 1)
        d_a += alpha.transpose(0, 2, 1) @ d_ctx
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
