"""GRU and LSTM language models in numpy: the reference for the gated cells (Parts 3 and 4).

The cells are PyTorch's (and cuDNN's), gate for gate, so that the torch engine can run the fused
kernels on the very same weights. Per layer, ``U`` (G·H × input) and ``W`` (G·H × H) hold the G
gates' matrices stacked, ``bu`` and ``bw`` their biases:

    GRU  (G = 3: r, z, n)        r = σ(U_r x + bu_r + W_r h + bw_r)
                                 z = σ(U_z x + bu_z + W_z h + bw_z)
                                 n = tanh(U_n x + bu_n + r ⊙ (W_n h + bw_n))
                                 h' = (1 − z) ⊙ n + z ⊙ h
    LSTM (G = 4: i, f, g, o)     i, f, o = σ(…), g = tanh(…)   (each U x + bu + W h + bw)
                                 c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')

The input is always an embedding ``E`` (D×C; D = H unless chosen), the output ``softmax(V h + c)``
with ``V`` C×H (or ``Eᵀ`` when tied) and a bias ``c``. Layer k ≥ 2 is named ``U2``, ``W2``, …;
a bidirectional encoder adds a right-to-left twin of every layer (``U_back``, …) that reads each
sentence from its last real token, and each layer then outputs both directions side by side.

Backpropagation is full BPTT within a sequence (the seed's truncation belongs to the vanilla RNN).
One backward time step is ``step_back``; the vanishing-gradient analysis takes the same step.
States: GRU (layers, B, H); LSTM (2, layers, B, H) — hidden states, then cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.network import GATES, gated_names
from rnnkit.models.numpy.lm import Forward, NumpyLM


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * a) + 1.0)  # no overflow for large |a|


def reverse_index(mask: np.ndarray) -> np.ndarray:
    """Per row, the positions that read the row's real tokens backwards, then its padding:
    applying it twice gives the identity."""
    B, T = mask.shape
    lengths = mask.sum(axis=1, keepdims=True)
    t = np.arange(T)[None, :]
    return np.where(t < lengths, lengths - 1 - t, t)


@dataclass
class LayerCache:
    """What one direction of one layer keeps for the backward pass: every array is (B, T, ·)."""

    inputs: np.ndarray  # what U multiplies (after dropout)
    previous: np.ndarray  # the state before each step (h_{t-1})
    states: np.ndarray  # h_t
    gates: np.ndarray  # activated gates: r, z, n (GRU) or i, f, g, o (LSTM)
    extra: np.ndarray  # GRU: W_n h + bw_n; LSTM: the cells c_t
    previous_cells: np.ndarray | None = None  # LSTM: c_{t-1}
    order: np.ndarray | None = None  # backward direction: the reversal applied to the inputs


class NumpyGated(NumpyLM):
    """A GRU or LSTM language model (or, bidirectional, an encoder) in numpy."""

    def initial_state(self, batch: int) -> np.ndarray:
        shape = (self.layers, batch, self.hidden)
        return np.zeros(((2,) if self.cell == "lstm" else ()) + shape, dtype=self.dtype)

    # ------------------------------------------------------------------ forward

    def _recur(self, pre: np.ndarray, W: np.ndarray, bw: np.ndarray, h: np.ndarray, c: np.ndarray | None,
               inputs: np.ndarray) -> LayerCache:
        """One direction of one layer over all steps; ``pre`` = U x + bu for every step at once."""
        B, T, _ = pre.shape
        H = W.shape[1]
        dt = self.dtype
        previous, states = np.empty((B, T, H), dt), np.empty((B, T, H), dt)
        gates = np.empty((B, T, GATES[self.cell] * H), dt)
        extra = np.empty((B, T, H), dt)
        previous_cells = np.empty((B, T, H), dt) if self.cell == "lstm" else None
        WT = W.T
        for t in range(T):  # the loop that cannot go: h_t needs h_{t-1}
            previous[:, t] = h
            recurrent = h @ WT + bw
            if self.cell == "gru":
                rz = sigmoid(pre[:, t, : 2 * H] + recurrent[:, : 2 * H])
                r, z = rz[:, :H], rz[:, H:]
                n = np.tanh(pre[:, t, 2 * H:] + r * recurrent[:, 2 * H:])
                h = n + z * (h - n)
                gates[:, t, : 2 * H], gates[:, t, 2 * H:] = rz, n
                extra[:, t] = recurrent[:, 2 * H:]
            else:
                a = pre[:, t] + recurrent
                gates[:, t] = sigmoid(a)
                gates[:, t, 2 * H: 3 * H] = np.tanh(a[:, 2 * H: 3 * H])
                i, f, g, o = (gates[:, t, j * H:(j + 1) * H] for j in range(4))
                previous_cells[:, t] = c
                c = f * c + i * g
                extra[:, t] = c
                h = o * np.tanh(c)
            states[:, t] = h
        return LayerCache(inputs, previous, states, gates, extra, previous_cells)

    def layers_forward(self, x, h, rng, mask) -> Forward:
        B, T = x.shape
        if h is not None and self.config.bidirectional:
            raise RnnkitError("a bidirectional encoder starts from a zero state; it carries no state")
        h = self.initial_state(B) if h is None else h
        hs, cs = (h[0], h[1]) if self.cell == "lstm" else (h, None)
        fwd = Forward(states=[], final=h, h0=h)
        below = self.params["E"].T[x]
        drop = self._dropout_mask(below.shape, rng)
        if drop is not None:
            below = below * drop
            fwd.masks["E"] = drop
        order = reverse_index(np.ones((B, T), bool) if mask is None else mask) if self.config.bidirectional else None
        finals_h, finals_c = [], []
        for k in range(self.layers):
            if k:
                drop = self._dropout_mask(below.shape, rng)
                if drop is not None:
                    below = below * drop
                    fwd.masks[f"layer{k}"] = drop
            caches = []
            for d in range(self.config.directions):
                u, w, bu, bw = (self.params[n] for n in gated_names(k, d == 1))
                inputs = below if d == 0 else np.take_along_axis(below, order[:, :, None], axis=1)
                zero = np.zeros((B, self.hidden), self.dtype)
                cache = self._recur(inputs @ u.T + bu, w, bw, hs[k] if d == 0 else zero,
                                    (cs[k] if d == 0 else zero) if cs is not None else None, inputs)
                cache.order = order if d else None
                caches.append(cache)
            fwd.caches.append(caches)
            finals_h.append(caches[0].states[:, -1])
            if cs is not None:
                finals_c.append(caches[0].extra[:, -1])
            outputs = [c.states if c.order is None else np.take_along_axis(c.states, c.order[:, :, None], axis=1)
                       for c in caches]
            below = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
            fwd.states.append(below)
        fwd.final = np.stack([np.stack(finals_h), np.stack(finals_c)]) if cs is not None else np.stack(finals_h)
        return fwd

    # ------------------------------------------------------------------ backward

    def step_back(self, cache: LayerCache, index, W: np.ndarray, dh: np.ndarray, dc: np.ndarray | None):
        H = W.shape[1]
        gates = cache.gates[index]
        if self.cell == "gru":
            r, z, n = gates[:, :H], gates[:, H: 2 * H], gates[:, 2 * H:]
            dn = dh * (1.0 - z)
            da_n = dn * (1.0 - n * n)
            da_r = da_n * cache.extra[index] * r * (1.0 - r)
            da_z = dh * (cache.previous[index] - n) * z * (1.0 - z)
            d_pre = np.concatenate([da_r, da_z, da_n], axis=1)
            d_recurrent = np.concatenate([da_r, da_z, da_n * r], axis=1)
            return d_pre, d_recurrent, dh * z + d_recurrent @ W, None
        i, f, g, o = (gates[:, j * H:(j + 1) * H] for j in range(4))
        tanh_c = np.tanh(cache.extra[index])
        dc = dh * o * (1.0 - tanh_c * tanh_c) + (0.0 if dc is None else dc)
        d_pre = np.concatenate([dc * g * i * (1.0 - i), dc * cache.previous_cells[index] * f * (1.0 - f),
                                dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)], axis=1)
        return d_pre, d_pre, d_pre @ W, dc * f

    def _gates_through_time(self, cache: LayerCache, W: np.ndarray, arriving: np.ndarray):
        """Errors at the pre-activations (input side and recurrent side, each (B, T, G·H)) given the
        error ``arriving`` at every h_t from above, and the errors at the initial h (and c)."""
        B, T, H = arriving.shape
        d_pre = np.empty((B, T, W.shape[0]), self.dtype)
        d_recurrent = d_pre if self.cell == "lstm" else np.empty_like(d_pre)
        dh, dc = np.zeros((B, H), self.dtype), None
        for t in range(T - 1, -1, -1):
            step = (slice(None), t)
            d_pre[:, t], d_recurrent[:, t], dh, dc = self.step_back(cache, step, W, arriving[:, t] + dh, dc)
        return d_pre, d_recurrent, dh, dc

    def layers_backward(self, x, fwd, arriving, grads, truncate):
        B, T = x.shape
        H = self.hidden
        initial_h, initial_c = [None] * self.layers, [None] * self.layers
        for k in range(self.layers - 1, -1, -1):
            into_below = 0.0
            for d, cache in enumerate(fwd.caches[k]):
                u, w, bu, bw = gated_names(k, d == 1)
                part = arriving[:, :, d * H:(d + 1) * H]
                if cache.order is not None:
                    part = np.take_along_axis(part, cache.order[:, :, None], axis=1)
                d_pre, d_recurrent, dh0, dc0 = self._gates_through_time(cache, self.params[w], part)
                if d == 0:
                    initial_h[k], initial_c[k] = dh0, dc0
                flat_pre = d_pre.reshape(B * T, -1)
                flat_recurrent = d_recurrent.reshape(B * T, -1)
                grads[u] = flat_pre.T @ cache.inputs.reshape(B * T, -1)
                grads[bu] = flat_pre.sum(axis=0)
                grads[w] = flat_recurrent.T @ cache.previous.reshape(B * T, H)
                grads[bw] = flat_recurrent.sum(axis=0)
                d_inputs = d_pre @ self.params[u]
                if cache.order is not None:
                    d_inputs = np.take_along_axis(d_inputs, cache.order[:, :, None], axis=1)
                into_below = into_below + d_inputs
            arriving = into_below * fwd.masks.get(f"layer{k}" if k else "E", 1.0)
        fwd.d_initial = np.stack(initial_h) if self.cell == "gru" else np.stack([np.stack(initial_h), np.stack(initial_c)])
        return "E", arriving.reshape(B * T, -1)

    def top_layer(self, fwd: Forward) -> tuple[LayerCache, np.ndarray]:
        return fwd.caches[-1][0], self.params[gated_names(self.layers - 1)[1]]

