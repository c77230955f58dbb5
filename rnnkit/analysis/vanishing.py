"""The vanishing (and exploding) gradient problem, measured (Part 3).

For a loss L_t at step t, backpropagation through time multiplies the error at the state s_t by
one Jacobian per step it goes back; ``∂L_t/∂s_{t−k}`` is what reaches k steps earlier, the signal
that would let the model learn a dependency k words long. For a tanh RNN each factor is
``Wᵀ diag(1 − s²)``, so the norm shrinks geometrically when W's largest singular value is small
(and explodes when it is large, which a ReLU RNN with a big initialisation shows). GRU and LSTM
carry the state forward additively, gated, so their gradients fade far more slowly.

``measure`` runs the numpy engine's own backward step over windows of real text (or random
tokens) and averages the norms over every loss L_t and window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.numpy.threads import one_blas_thread


@dataclass
class Measurement:
    label: str
    cell: str
    norms: np.ndarray  # mean ‖∂L_t/∂s_{t−k}‖ for k = 0 … distance
    losses: int  # how many L_t were averaged
    largest_singular_value: float  # of the top layer's recurrent matrix (all gates stacked for gru/lstm)
    gate_singular_values: dict[str, float] | None = None
    gradient_norm: float | None = None  # global norm of the weights' gradient on the measured windows
    clip: float | None = None

    def as_dict(self) -> dict[str, Any]:
        result = {"label": self.label, "cell": self.cell, "norms": [float(v) for v in self.norms],
                  "relative": [float(v / self.norms[0]) if self.norms[0] else math.nan for v in self.norms],
                  "losses": self.losses, "largest_singular_value": self.largest_singular_value}
        if self.gate_singular_values:
            result["gate_singular_values"] = self.gate_singular_values
        if self.gradient_norm is not None:
            result["gradient_norm"] = self.gradient_norm
            if self.clip:
                result["clip"] = self.clip
                result["clipped_gradient_norm"] = min(self.gradient_norm, self.clip)
        return result


GATE_NAMES = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}


def singular_values(model) -> tuple[float, dict[str, float] | None]:
    """The largest singular value of the top layer's recurrent matrix, and of each gate's block."""
    from rnnkit.models.numpy.gated import NumpyGated, gated_names
    from rnnkit.models.numpy.rnn import layer_names

    if isinstance(model, NumpyGated):
        W = model.params[gated_names(model.layers - 1)[1]]
        H = W.shape[1]
        gates = {g: float(np.linalg.norm(W[i * H:(i + 1) * H], 2)) for i, g in enumerate(GATE_NAMES[model.cell])}
        return float(np.linalg.norm(W, 2)), gates
    return float(np.linalg.norm(model.params[layer_names(model.layers - 1)[1]], 2)), None


def windows(tokens: np.ndarray, length: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` windows of ``length + 1`` consecutive tokens (inputs and next-token targets),
    from random places in ``tokens``."""
    if len(tokens) < length + 2:
        raise RnnkitError(f"the text has {len(tokens):,} tokens, too few for windows of {length + 1}; "
                          "lower --distance")
    starts = rng.integers(0, len(tokens) - length - 1, size=count)
    return tokens[starts[:, None] + np.arange(length + 1)[None, :]]


def measure(model, label: str, sequences: np.ndarray, distance: int, clip: float | None = None) -> Measurement:
    """Mean norms of ∂L_t/∂s_{t−k}, k = 0 … distance, over every t ≥ distance of every sequence
    (rows of ``sequences`` (N, T + 1): inputs are [:, :-1], targets [:, 1:])."""
    x, y = sequences[:, :-1], sequences[:, 1:]
    mask = np.ones(x.shape, dtype=bool)
    with one_blas_thread(), np.errstate(over="ignore", invalid="ignore"):
        norms = model.state_gradients(x, y, mask, distance)
        _, grads = model.loss_and_grads(x, y, mask)
        gradient_norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    largest, gates = singular_values(model)
    return Measurement(label, model.cell, norms.mean(axis=0), len(norms), largest, gates, gradient_norm, clip)


def plot(results: list[Measurement], path: str | Path, title: str) -> None:
    """One curve per model: mean ‖∂L_t/∂s_{t−k}‖ against k, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnkit.fsutil import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(7, 4.4))
    for m in results:
        finite = np.where(np.isfinite(m.norms) & (m.norms > 0), m.norms, np.nan)
        ax.plot(np.arange(len(m.norms)), finite, marker=".",
                label=f"{m.label}  (σ_max(W) = {m.largest_singular_value:.2f})")
    ax.set_yscale("log")
    ax.set_xlabel("k: steps back from the loss L_t")
    ax.set_ylabel("mean ‖∂L_t / ∂s_(t−k)‖")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
