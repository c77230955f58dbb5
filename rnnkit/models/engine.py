"""The engines, and the one interface training needs of a model whichever engine runs it.

``ENGINES`` says what each engine can do (devices, mixed precisions, micro-batches, torchrun),
so that nothing asks an engine by its name: the numpy engine is the reference (hand-written
backward passes, gradient-checked), the torch engine the fast path. ``open_engine`` builds a
model of any kind on one: each kind names its engine classes in its record (``rnnkit.kinds``),
in its own package, on the shared bases ``rnnkit.models.numpy.engine.NumpyTrainable`` and
``rnnkit.models.torch.engine.TorchTrainable``; each kind's protocol (what use needs beyond
``Trainable``) is in its package too. States (``h``) are the engine's own arrays or tensors:
(layers, B, H), with cells first for an LSTM.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.kinds import lookup
from rnnkit.models.memory import retain_freed_memory
from rnnkit.models.network import CELLS


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


@dataclass(frozen=True)
class EngineInfo:
    """What an engine can do."""

    name: str
    available: Callable[[], bool]  # installed here
    install: str  # how to get it, when it is not
    devices: tuple[str, ...]  # where it runs, the first its own
    precisions: dict[str, tuple[str, ...]]  # by device: what it computes in (fp32; bf16, fp16: mixed precision)
    micro_batches: bool  # gathers a step's gradients over micro-batches (--grad-accum)
    distributed: bool  # trains on many processes under torchrun
    fast: bool  # the fast path: "auto" takes it where it runs the model; the recipes were measured on it

    def on(self, device: str) -> bool:
        return device in self.devices and (device == "cpu" or device_available(device))


ENGINES: dict[str, EngineInfo] = {
    "numpy": EngineInfo("numpy", lambda: True, "", ("cpu",), {"cpu": ("fp32",)}, micro_batches=False,
                        distributed=False, fast=False),
    "torch": EngineInfo("torch", lambda: torch_available(), "pip install torch", ("cpu", "cuda"),
                        {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16")}, micro_batches=True,
                        distributed=True, fast=True),
}


def device_available(device: str) -> bool:
    return device == "cpu" or (device == "cuda" and cuda_available())


def check_engine_can(engine: str, capability: str, what: str, why: str) -> None:
    """``what`` (a flag, a way of running) needs an engine with ``capability`` (an ``EngineInfo`` field)."""
    if engine in ENGINES and not getattr(ENGINES[engine], capability):
        able = " or ".join(e.name for e in ENGINES.values() if getattr(e, capability))
        raise RnnkitError(f"{what} needs the {able} engine ({why})")


def resolve_engine(engine: str = "auto", device: str = "auto", cell: str | None = None,
                   engines: tuple[str, ...] | None = None) -> tuple[str, str]:
    """(engine, device) with every "auto" decided: the fast engine when it is installed and runs
    the cell (and the kind: ``engines``), else the reference; a GPU when there is one for it, else
    the CPU."""
    if engine not in ("auto", *ENGINES):
        raise RnnkitError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
    devices = dict.fromkeys(d for e in ENGINES.values() for d in e.devices)
    if device not in ("auto", *devices):
        raise RnnkitError(f"unknown device {device!r}; use {', '.join(devices)} or auto")
    runs_on = tuple(e for e in (CELLS[cell].engines if cell in CELLS else ENGINES) if e in (engines or ENGINES))
    if engine == "auto":
        fast = [e for e in runs_on if ENGINES[e].fast and ENGINES[e].available()]
        engine = (fast or [e for e in runs_on if not ENGINES[e].fast] or list(runs_on))[0]
    if engine not in runs_on:
        what = f"the {cell} cell" if cell in CELLS else "this model"
        raise RnnkitError(f"{what} runs on the {' and '.join(runs_on)} engine only; use --engine {runs_on[0]} "
                          "(or auto)")
    info = ENGINES[engine]
    if not info.available():
        raise RnnkitError(f"the {engine} engine is not installed: {info.install} (or use --engine auto)")
    if device == "auto":
        device = next((d for d in reversed(info.devices) if info.on(d)), info.devices[0])
    if not info.on(device):
        raise RnnkitError(f"no {device.upper()} device here (or the {engine} engine, which runs on "
                          f"{' and '.join(info.devices)}, was chosen); use --device cpu")
    return engine, device


def open_engine(config: Any, params: dict[str, np.ndarray], *, engine: str = "auto",
                device: str = "auto", optimizer: str | None = None, clip: float | None = None,
                seed: int = 0, precision: str = "fp32", grad_accum: int = 1,
                weight_decay: float = 0.0) -> Trainable:
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
