"""The tutorial's own GRU language model (Part 4), exactly as its code computes it.

Its weights: ``E`` (H×C; the embedding is as wide as the state), ``U`` and ``W`` (6×H×H), ``b``
(6×H), ``V`` (C×H), ``c`` (C). Two GRU layers; matrices 0, 1, 2 are layer 1's z, r and candidate,
3, 4, 5 layer 2's. Unlike PyTorch's GRU, the gates are hard sigmoids, there is one bias per gate,
and the reset gate multiplies the state before ``W``:

    z = hard_sigmoid(U[0] x_e + W[0] s + b[0]),  r = hard_sigmoid(U[1] x_e + W[1] s + b[1])
    h = tanh(U[2] x_e + W[2] (s ⊙ r) + b[2]),    s' = (1 − z) ⊙ h + z ⊙ s
    o = softmax(V s2 + c)

Imported models score and generate with it (numpy engine); rnnkit trains its own ``gru`` cell.
"""

from __future__ import annotations

import numpy as np

from rnnkit.models.numpy.rnn import softmax


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """Theano's hard sigmoid: clip(0.2·x + 0.5, 0, 1)."""
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


class TutorialGRU:
    cell = "tutorial-gru"

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.params = params

    @property
    def hidden(self) -> int:
        return self.params["E"].shape[0]

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((2, batch, self.hidden), dtype=self.params["E"].dtype)

    def _run(self, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Layer-2 states (B, T, H) for inputs ``x`` (B, T), and the last state (2, B, H)."""
        E, U, W, b = (self.params[k] for k in "EUWb")
        inputs = E.T[x]  # x_e = E[:, x_t], for every position at once
        s1, s2 = state[0], state[1]
        top = np.empty(x.shape + (self.hidden,), dtype=E.dtype)
        for t in range(x.shape[1]):
            s1 = self._gru(inputs[:, t], s1, U[0:3], W[0:3], b[0:3])
            s2 = self._gru(s1, s2, U[3:6], W[3:6], b[3:6])
            top[:, t] = s2
        return top, np.stack([s1, s2])

    @staticmethod
    def _gru(x: np.ndarray, s: np.ndarray, U: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        z = hard_sigmoid(x @ U[0].T + s @ W[0].T + b[0])
        r = hard_sigmoid(x @ U[1].T + s @ W[1].T + b[1])
        h = np.tanh(x @ U[2].T + (s * r) @ W[2].T + b[2])
        return (1.0 - z) * h + z * s

    def _probs(self, top: np.ndarray) -> np.ndarray:
        return softmax(top @ self.params["V"].T + self.params["c"])

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log o_t[y_t] for every position of a batch (B, T), from a zero state."""
        top, _ = self._run(x, self.initial_state(len(x)))
        probs = self._probs(top)
        return np.log(np.take_along_axis(probs, y[:, :, None], axis=2)[:, :, 0])

    def step(self, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top, state = self._run(x[:, None], state)
        return self._probs(top[:, 0]), state
