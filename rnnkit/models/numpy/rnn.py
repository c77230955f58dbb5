"""The vanilla RNN language model in numpy: the reference engine (seed, Part 2).

    s_t = tanh(U x_t + W s_{t-1}),   o_t = softmax(V s_t),   s_{-1} = 0

``U`` is H×C (``U x_t`` is the column ``U[:, x_t]``), ``W`` is H×H, ``V`` is C×H. No biases,
as in the seed. Beyond the seed, two options: an embedding ``E`` (D×C, so ``U`` is H×D and the
input is ``U E x_t``) and more layers (layer k ≥ 2 has ``Uk`` H×H on the state of layer k−1 and
``Wk`` H×H), with dropout on the embedding, between layers and before ``V`` while training.
States carried between calls are (layers, B, H), as in PyTorch.

Backpropagation through time follows the seed's truncation exactly: the error at output ``t``
flows back through steps ``t, t-1, …, t - bptt_truncate`` and no further (in each layer, for the
error that layer receives from above). Instead of the seed's double loop of outer products, the
backward pass runs one loop over lags (each step one batched matrix product for all outputs at
once), or, when nothing is truncated, the usual single backward sweep; the weight gradients are
then one matrix product each.
"""

from __future__ import annotations

import numpy as np

from rnnkit.models.network import layer_names
from rnnkit.models.numpy.lm import Forward, NumpyLM


class NumpyRNN(NumpyLM):
    """A vanilla RNN language model: ``U`` (H×C, or H×D after an embedding ``E``), ``W`` (H×H), ``V`` (C×H)."""

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((self.layers, batch, self.hidden), dtype=self.dtype)

    def _activate(self, a: np.ndarray) -> np.ndarray:
        return np.tanh(a, out=a) if self.config.activation == "tanh" else np.maximum(a, 0.0, out=a)

    def _slope(self, states: np.ndarray) -> np.ndarray:
        """The activation's derivative, from its output: tanh' = 1 − s², relu' = [s > 0]."""
        return 1.0 - states * states if self.config.activation == "tanh" else (states > 0).astype(states.dtype)

    # ------------------------------------------------------------------ forward

    def _recur(self, pre: np.ndarray, W: np.ndarray, h: np.ndarray) -> np.ndarray:
        B, T, H = pre.shape
        states = np.empty((B, T, H), dtype=self.dtype)
        WT = W.T
        for t in range(T):  # the one loop that cannot go: s_t needs s_{t-1}
            h = self._activate(pre[:, t] + h @ WT)
            states[:, t] = h
        return states

    def layers_forward(self, x, h, rng, mask) -> Forward:
        h = self.initial_state(x.shape[0]) if h is None else h
        fwd = Forward(states=[], final=h, h0=h)
        if self.embedded:
            embedded = self.params["E"].T[x]
            drop = self._dropout_mask(embedded.shape, rng)
            if drop is not None:
                embedded = embedded * drop
                fwd.masks["E"] = drop
            fwd.inputs.append(embedded)
            pre = embedded @ self.params["U"].T
        else:
            fwd.inputs.append(None)
            pre = self.params["U"].T[x]  # column lookups U[:, x_t], all at once
        for k in range(self.layers):
            u, w = layer_names(k)
            if k:
                below = fwd.states[-1]
                drop = self._dropout_mask(below.shape, rng)
                if drop is not None:
                    below = below * drop
                    fwd.masks[f"layer{k}"] = drop
                fwd.inputs.append(below)
                pre = below @ self.params[u].T
            fwd.states.append(self._recur(pre, self.params[w], h[k]))
        fwd.final = np.stack([s[:, -1] for s in fwd.states])
        return fwd

    # ------------------------------------------------------------------ backward

    def _through_time(self, delta: np.ndarray, W: np.ndarray, slope: np.ndarray, truncate: int) -> np.ndarray:
        """Error at each step's pre-activation, given the error ``delta`` arriving at each step from
        above (already times the slope): each arrival flows back at most ``truncate`` steps."""
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

    def layers_backward(self, x, fwd, arriving, grads, truncate):
        B, T = x.shape
        H = self.hidden
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
                return "U", flat_total
            grads[u] = flat_total.T @ below.reshape(B * T, -1)
            arriving = (flat_total @ self.params[u]).reshape(B, T, -1)
            arriving *= fwd.masks.get(f"layer{k}" if k else "E", 1.0)
        return "E", arriving.reshape(B * T, -1)

    def step_back(self, cache: np.ndarray, index, W: np.ndarray, dh: np.ndarray, dc=None):
        d_pre = dh * self._slope(cache[index])
        return d_pre, d_pre, d_pre @ W, None

    def top_layer(self, fwd: Forward) -> tuple[np.ndarray, np.ndarray]:
        return fwd.states[-1], self.params[layer_names(self.layers - 1)[1]]
