"""The vanishing (and exploding) gradient problem, measured (Part 3).

For a loss L_t at step t, backpropagation through time multiplies the error at the state s_t by
one Jacobian per step it goes back; ``∂L_t/∂s_{t−k}`` is what reaches k steps earlier, the signal
that would let the model learn a dependency k words long. For a tanh RNN each factor is
``Wᵀ diag(1 − s²)``, so the norm shrinks geometrically when W's largest singular value is small
(and explodes when it is large, which a ReLU RNN with a big initialisation shows). GRU and LSTM
carry the state forward additively, gated, so their gradients fade far more slowly.

``state_gradients`` runs the numpy engine's own backward step (``step_back``) from each loss;
``measure`` averages its norms over every loss L_t of windows of real text (or random tokens), and
``compare`` measures fresh cells or trained models side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import stream_tokens
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.figures import pyplot, save_figure
from rnnkit.io.modeldir import ModelFiles, load_model
from rnnkit.models.network import CELLS, Network, gated_names, layer_names
from rnnkit.models.numpy import NumpyLM, build
from rnnkit.models.threads import all_blas_threads, one_blas_thread


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


def singular_values(model: NumpyLM) -> tuple[float, dict[str, float] | None]:
    """The largest singular value of the top layer's recurrent matrix, and of each gate's block."""
    if model.config.gated:
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


def state_gradients(model: NumpyLM, x: np.ndarray, y: np.ndarray, mask: np.ndarray, distance: int) -> np.ndarray:
    """Norms of ∂L_t/∂s_{t−k} (the top layer's state) for k = 0 … ``distance``, each loss L_t
    alone: (N, distance + 1) for the N real outputs t with t ≥ ``distance``. Full BPTT."""
    fwd = model.forward(x, y, mask=mask)
    rows, ends = np.nonzero(mask & (np.arange(x.shape[1])[None, :] >= distance))
    error = fwd.probs[rows, ends]  # o_t − onehot(y_t) for each chosen L_t
    error[np.arange(len(rows)), y[rows, ends]] -= 1.0
    with all_blas_threads():
        dh = error @ model.output_matrix()  # ∂L_t/∂s_t
    cache, W = model.top_layer(fwd)
    dc = None
    norms = np.empty((len(rows), distance + 1))
    for k in range(distance + 1):
        norms[:, k] = np.linalg.norm(dh, axis=1)
        if k < distance:
            _, _, dh, dc = model.step_back(cache, (rows, ends - k), W, dh, dc)
    return norms


def measure(model: NumpyLM, label: str, sequences: np.ndarray, distance: int,
            clip: float | None = None) -> Measurement:
    """Mean norms of ∂L_t/∂s_{t−k}, k = 0 … distance, over every t ≥ distance of every sequence
    (rows of ``sequences`` (N, T + 1): inputs are [:, :-1], targets [:, 1:])."""
    x, y = sequences[:, :-1], sequences[:, 1:]
    mask = np.ones(x.shape, dtype=bool)
    with one_blas_thread(), np.errstate(over="ignore", invalid="ignore"):
        norms = state_gradients(model, x, y, mask, distance)
        _, grads = model.loss_and_grads(x, y, mask)
        gradient_norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    largest, gates = singular_values(model)
    return Measurement(label, model.cell, norms.mean(axis=0), len(norms), largest, gates, gradient_norm, clip)


def fresh_model(cell: str, vocab_size: int, hidden: int, *, layers: int = 1, activation: str = "tanh",
                init_scale: float = 1.0, seed: int = 0) -> NumpyLM:
    """An untrained float64 model, its recurrent matrices multiplied by ``init_scale``."""
    model = build(Network(cell, vocab_size, hidden, layers=layers, activation=activation, dtype="float64"),
                  rng=np.random.RandomState(seed))
    for k in range(layers):
        model.params[(gated_names if model.config.gated else layer_names)(k)[1]] *= init_scale
    return model


def trained_model(files: ModelFiles) -> NumpyLM:
    """A trained model in float64, to measure."""
    if not CELLS[files.config.cell].trainable:
        raise RnnkitError(f"{files.path} is a {files.config.cell} model, which rnnkit runs forward only; "
                          "measure a model trained by rnnkit")
    config = Network.from_dict({**files.config.to_dict(), "dtype": "float64"})
    return build(config, {k: v.astype(np.float64) for k, v in files.params.items()})


def compare(models: list[str], cells: list[str], *, data: str | None = None, split: str | None = None,
            distance: int = 50, windows_count: int = 64, losses_per_window: int = 10, hidden: int = 100,
            layers: int = 1, activation: str = "tanh", init_scale: float = 1.0, clip: float | None = None,
            seed: int = 0) -> tuple[list[Measurement], str]:
    """Measure trained ``models`` (directories), or else fresh ``cells``, on windows of ``data``'s
    text (or random tokens); the measurements and a description of the text."""
    if distance < 1 or windows_count < 1 or hidden < 1 or init_scale <= 0:
        raise RnnkitError("--distance, --windows and --hidden must be at least 1, --init-scale above 0")
    if activation != "tanh" and (models or set(cells) != {"rnn"}):
        raise RnnkitError("--activation applies to fresh rnn cells only: use it with --cell rnn and no MODEL")
    rng = np.random.default_rng(seed)
    corpus = PreparedCorpus.open(data) if data else None
    if corpus is not None:
        split = split or ("valid" if "valid" in corpus.splits else "train")
        corpus.check_split(split)
    chosen = []
    for path in models:
        files = load_model(path, kind="lm")
        if corpus is not None and files.vocab.tokens != corpus.vocab.tokens:
            raise RnnkitError(f"{path} was trained with another vocabulary than {data}'s")
        chosen.append((Path(path).name, trained_model(files)))
    # Random tokens (no data) must be valid input for every model given.
    vocab_size = len(corpus.vocab) if corpus is not None else min((m.vocab_size for _, m in chosen), default=1000)
    if not models:
        for cell in cells:
            scale = f", W × {init_scale:g}" if init_scale != 1 else ""
            label = f"{cell}{' (relu)' if activation == 'relu' else ''}{scale}, untrained"
            chosen.append((label, fresh_model(cell, vocab_size, hidden, layers=layers, activation=activation,
                                              init_scale=init_scale, seed=seed)))
    length = distance + losses_per_window
    if corpus is None:
        sequences = rng.integers(0, vocab_size, size=(windows_count, length + 1))
        source = f"random tokens (vocabulary {vocab_size:,})"
    else:
        sequences = windows(stream_tokens(corpus, split), length, windows_count, rng)
        source = f"{data} ({split})"
    return [measure(model, label, sequences, distance, clip) for label, model in chosen], source


def plot(results: list[Measurement], path: str | Path, title: str) -> None:
    """One curve per model: mean ‖∂L_t/∂s_{t−k}‖ against k, log scale."""
    plt = pyplot()
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
    save_figure(fig, path)
