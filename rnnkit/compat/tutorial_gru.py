"""The tutorial's own GRU language model (Part 4), exactly as its code computes it.

Its weights: ``E`` (H×C; the embedding is as wide as the state), ``U`` and ``W`` (6×H×H), ``b``
(6×H), ``V`` (C×H), ``c`` (C). Two GRU layers; matrices 0, 1, 2 are layer 1's z, r and candidate,
3, 4, 5 layer 2's. Unlike PyTorch's GRU, the gates are hard sigmoids, there is one bias per gate,
and the reset gate multiplies the state before ``W``:

    z = hard_sigmoid(U[0] x_e + W[0] s + b[0]),  r = hard_sigmoid(U[1] x_e + W[1] s + b[1])
    h = tanh(U[2] x_e + W[2] (s ⊙ r) + b[2]),    s' = (1 − z) ⊙ h + z ⊙ s
    o = softmax(V s2 + c)

Imported models score and generate with it, on the numpy engine; rnnkit trains its own ``gru``.
"""

from __future__ import annotations

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.network import Cell, Network, register_cell
from rnnkit.models.numpy import MODELS
from rnnkit.models.numpy.lm import Forward, NumpyLM
from rnnkit.models.schema import ParamSpec

CELL = "tutorial-gru"


def schema(config: Network) -> dict[str, ParamSpec]:
    C, H = config.vocab_size, config.hidden
    return {"E": ParamSpec((H, C)), "U": ParamSpec((6, H, H)), "W": ParamSpec((6, H, H)), "b": ParamSpec((6, H)),
            "V": ParamSpec((C, H)), "c": ParamSpec((C,))}


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """Theano's hard sigmoid: clip(0.2·x + 0.5, 0, 1)."""
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


class TutorialGRU(NumpyLM):
    """Forward only: the output layer and the loss are ``NumpyLM``'s."""

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((2, batch, self.hidden), dtype=self.dtype)

    def layers_forward(self, x, h, rng, mask) -> Forward:
        """Layer-2 states (B, T, H) for inputs ``x`` (B, T), and the last state (2, B, H)."""
        E, U, W, b = (self.params[k] for k in "EUWb")
        h = self.initial_state(len(x)) if h is None else h
        inputs = E.T[x]  # x_e = E[:, x_t], for every position at once
        s1, s2 = h[0], h[1]
        top = np.empty(x.shape + (self.hidden,), dtype=E.dtype)
        for t in range(x.shape[1]):
            s1 = self._gru(inputs[:, t], s1, U[0:3], W[0:3], b[0:3])
            s2 = self._gru(s1, s2, U[3:6], W[3:6], b[3:6])
            top[:, t] = s2
        return Forward(states=[top], final=np.stack([s1, s2]), h0=h)

    @staticmethod
    def _gru(x: np.ndarray, s: np.ndarray, U: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        z = hard_sigmoid(x @ U[0].T + s @ W[0].T + b[0])
        r = hard_sigmoid(x @ U[1].T + s @ W[1].T + b[1])
        h = np.tanh(x @ U[2].T + (s * r) @ W[2].T + b[2])
        return (1.0 - z) * h + z * s

    def layers_backward(self, x, fwd, arriving, grads, truncate):
        raise RnnkitError("the tutorial's GRU runs forward only (it scores and generates); train rnnkit's gru")


register_cell(CELL, Cell(schema, engines=("numpy",), trainable=False))
MODELS[CELL] = TutorialGRU
