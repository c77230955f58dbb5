"""One engine interface: what training and use need of a model, whichever engine runs it.

``train/`` and ``use/`` reach models only through ``open_engine`` and the ``Engine`` protocol;
the numpy engine (``rnnkit.models.numpy.engine``, the reference) and the torch engine
(``rnnkit.models.torch.engine``, the fast path) each implement it in their own module. States
(``h``) are the engine's own arrays or tensors: (layers, B, H), with cells first for an LSTM.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.kinds import lookup
from rnnkit.models.config import LMConfig, RankerConfig, Seq2SeqConfig
from rnnkit.models.memory import retain_freed_memory
from rnnkit.models.schema import CELLS

ENGINES = ("numpy", "torch")


@runtime_checkable
class Trainable(Protocol):
    """What the training loop needs of any model on any engine: its weights, its state, a step and a loss."""

    name: str

    def params(self) -> dict[str, np.ndarray]:
        """The weights under canonical names."""

    def load_params(self, params: dict[str, np.ndarray]) -> None: ...

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The optimizer's state and the generators' (dropout), as arrays for a checkpoint."""

    def load_state_arrays(self, arrays: dict[str, np.ndarray], steps: int) -> None: ...

    def state_to_numpy(self, h: Any) -> np.ndarray: ...

    def state_from_numpy(self, h: np.ndarray) -> Any: ...

    def train_step(self, batch: Any, lr: float, scale: float, carry: Any = None) -> tuple[float, Any]:
        """One optimizer step on ``scale`` × the summed loss of ``batch`` (a ``Batch``, ``PairBatch``
        or ``Seq2SeqBatch``: its kind's), gathered over the engine's micro-batches of rows; the summed
        loss and, when ``carry`` (a state) was given, the state to carry into the next batch."""

    def loss(self, batch: Any, carry: Any = None) -> tuple[float, Any]:
        """The summed loss without dropout or update, and the state after it (when ``carry`` was given)."""


@runtime_checkable
class Engine(Trainable, Protocol):
    """A language model on one engine; with an optimizer, also a learner."""

    config: LMConfig

    # What use needs: scoring and generation.
    def initial_state(self, batch: int) -> Any: ...

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log P(y_t | x_≤t) (B, T) from a zero state."""

    def observe(self, x: np.ndarray, y: np.ndarray, h: Any = None) -> tuple[np.ndarray, np.ndarray, Any]:
        """log P(y_t | x_≤t) (B, T) from state ``h`` (zero when None), the top layer's states
        (B, T, width) — what the output layer reads, and a neural cache keys on — and the last state."""

    def step(self, tokens: np.ndarray, h: Any) -> tuple[np.ndarray, Any]:
        """Next-token probabilities (B, C) after ``tokens`` (B,), and the new state."""

    def step_states(self, tokens: np.ndarray, h: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """``step``, with the top layer's states (B, width) between the probabilities and the state."""

    # Dynamic evaluation: the weights adapt to the text as it is read.
    def adapt(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: Any, lr: float,
              decay: float) -> tuple[np.ndarray, np.ndarray, Any]:
        """``observe`` (without dropout), then one SGD step on the mean loss of the real tokens,
        pulled back toward the weights before the first ``adapt`` by ``decay``:
        w ← w − lr ∇ + decay (w₀ − w)."""

    def restore(self) -> None:
        """The weights as they were before the first ``adapt``."""


@runtime_checkable
class RankerEngine(Trainable, Protocol):
    """A dual encoder on one engine; with an optimizer, also a learner."""

    config: RankerConfig

    def encode(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Encodings (B, D) of padded id rows."""

    def score_matrix(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        """cᵢᵀ M rⱼ for every context encoding against every response encoding."""

    def encode_states(self, x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encodings (B, D) and the top layer's states (B, T, width) of padded id rows."""

    def match_scores(self, A: np.ndarray, mask_a: np.ndarray, B: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
        """A reranker's head: the scores (P,) of P pairs of context and response states."""


@runtime_checkable
class Seq2SeqEngine(Trainable, Protocol):
    """An encoder–decoder on one engine; with an optimizer, also a learner. Decoding goes step by
    step on the engine's own arrays (``Encoded`` holds them)."""

    config: Seq2SeqConfig

    def encode(self, x: np.ndarray, mask: np.ndarray) -> Any:
        """The encoded source rows (an ``Encoded``: annotations, mask, the decoder's first state)."""

    def step(self, tokens: np.ndarray, state: Any, encoded: Any,
             allowed: np.ndarray | None = None) -> tuple[np.ndarray, Any, np.ndarray | None]:
        """Log-probabilities (N, C) of the next token after ``tokens`` (N,), the new state, and the
        attention weights (N, S) (None without attention); ``allowed`` (N, S): the only source
        positions this step may attend to."""

    def select(self, state: Any, encoded: Any, rows: np.ndarray) -> tuple[Any, Any]:
        """The state and encoded source of ``rows`` (beams follow their hypotheses)."""


@functools.cache
def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_available() -> bool:
    return torch_available() and __import__("torch").cuda.is_available()


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX-512 BF16 or AMX): there bf16
    autocast runs the products several times faster than float32; elsewhere it is emulated, and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: take float32, which is never slower
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def resolve_engine(engine: str = "auto", device: str = "auto", cell: str | None = None,
                   engines: tuple[str, ...] = ENGINES) -> tuple[str, str]:
    """(engine, device) with every "auto" decided: torch when it is installed and runs the cell
    (and the kind: ``engines``), else numpy; CUDA when there is one for torch, else the CPU."""
    if engine not in ("auto", *ENGINES):
        raise RnnkitError(f"unknown engine {engine!r}; use numpy or torch")
    if device not in ("auto", "cpu", "cuda"):
        raise RnnkitError(f"unknown device {device!r}; use cpu, cuda or auto")
    runs_on = tuple(e for e in (CELLS[cell].engines if cell in CELLS else ENGINES) if e in engines)
    if engine == "auto":
        engine = "torch" if torch_available() and "torch" in runs_on else "numpy"
    if engine not in runs_on:
        what = f"the {cell} cell" if cell in CELLS else "this model"
        raise RnnkitError(f"{what} runs on the {' and '.join(runs_on)} engine only; use --engine numpy (or auto)")
    if engine == "torch" and not torch_available():
        raise RnnkitError("the torch engine needs PyTorch: pip install torch (or use --engine numpy)")
    if device == "auto":
        device = "cuda" if engine == "torch" and cuda_available() else "cpu"
    if device == "cuda" and not (engine == "torch" and cuda_available()):
        raise RnnkitError("no CUDA device here (or the numpy engine was chosen); use --device cpu")
    return engine, device


def open_engine(config: LMConfig | RankerConfig | Seq2SeqConfig, params: dict[str, np.ndarray], *, engine: str = "auto",
                device: str = "auto", optimizer: str | None = None, clip: float | None = None,
                seed: int = 0, precision: str = "fp32", grad_accum: int = 1,
                weight_decay: float = 0.0) -> Engine | RankerEngine | Seq2SeqEngine:
    """The model of ``config`` with ``params`` on an engine; with ``optimizer``, ready to train
    (``precision`` bf16 or fp16: the torch engine's mixed precision; ``grad_accum``: its
    micro-batches per step; ``weight_decay``: each step shrinks the weight matrices by 1 - lr ×
    ``weight_decay``, after the optimizer's update)."""
    kind = lookup(config.kind)
    engine, device = resolve_engine(engine, device, getattr(config, "cell", None), tuple(kind.engines))
    retain_freed_memory()
    chosen = kind.engine(engine)
    mixed = {} if precision == "fp32" else {"precision": precision}  # the numpy engine computes in its dtype
    return chosen(config, params, device=device, optimizer=optimizer, clip=clip, seed=seed, grad_accum=grad_accum,
                  weight_decay=weight_decay, **mixed)
