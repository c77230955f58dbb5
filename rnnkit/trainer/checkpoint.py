"""Training checkpoints: ``MODEL/checkpoint/`` holds ``state.json`` (config, data position,
history) and ``arrays.safetensors`` (weights, optimizer state, generators, the carried state),
replaced atomically and durably, so it is always the previous checkpoint or the new one."""

from __future__ import annotations

import functools
import inspect
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.fsutil import replaced_directory, surviving_directory
from rnnkit.trainer.distributed import is_main_process

CHECKPOINT = "checkpoint"
T = TypeVar("T")


def save_checkpoint(out: Path, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save

    # Serialized here and written by Python, so that a full disk is an OSError (the CLI's one
    # line), not safetensors' own exception; the swap happens only once both files are whole.
    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    with replaced_directory(Path(out) / CHECKPOINT, durable=True) as tmp:
        (tmp / "arrays.safetensors").write_bytes(data)
        (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")


def load_checkpoint(out: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    directory = surviving_directory(Path(out) / CHECKPOINT)
    if directory is None or not (directory / "state.json").is_file():
        raise RnnkitError(f"{out} has no checkpoint to resume from; train without --resume")
    try:
        state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
        arrays = load_file(str(directory / "arrays.safetensors"))
    except Exception as e:  # a damaged checkpoint is the user's to know about, not a traceback
        raise RnnkitError(f"the checkpoint in {out} is damaged ({e}); train again without --resume") from None
    return state, arrays


def checkpoint_options(out: Path) -> dict[str, Any] | None:
    """The options the checkpoint in ``out`` was trained with, or None when there is none to read
    (resuming then says why)."""
    directory = surviving_directory(Path(out) / CHECKPOINT)
    if directory is None:
        return None
    try:
        return json.loads((directory / "state.json").read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def has_checkpoint(out: Path) -> bool:
    return surviving_directory(Path(out) / CHECKPOINT) is not None


def one_run_at_a_time(train: Callable[..., T]) -> Callable[..., T]:
    """A trainer ``train(data, out, ...)`` that refuses to start while another run (of any
    process) trains into the same ``out``: two would interleave their checkpoints. The lock is a
    ``flock`` on ``.OUT.lock`` beside ``out``, released (and the file removed) when the run ends;
    the system drops it if the process dies. In a run of many processes, the main one holds it."""

    signature = inspect.signature(train)

    @functools.wraps(train)
    def locked(*args: Any, **kwargs: Any) -> T:
        try:
            import fcntl
        except ImportError:  # no flock here (Windows): no lock
            return train(*args, **kwargs)
        if not is_main_process():
            return train(*args, **kwargs)
        out = Path(signature.bind(*args, **kwargs).arguments["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        lock = out.parent / f".{out.name}.lock"
        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                raise RnnkitError(f"{out} is in use: another run (process {holder}) is training into it; wait for "
                                  "it to end or choose another --out") from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                return train(*args, **kwargs)
            finally:
                lock.unlink(missing_ok=True)
                fcntl.flock(handle, fcntl.LOCK_UN)

    return locked


def open_run(out: Path, *, resume: bool, force: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The checkpoint to resume from, or None for a fresh run in ``out`` (an existing model
    directory is replaced only with ``force``, and only one that rnnkit wrote)."""
    out = Path(out)
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        # A run that stopped before its first checkpoint (a full disk) leaves its directory empty:
        # nothing to continue or to lose, so a re-run, with --resume or without, starts afresh.
        if resume:
            print(f"rnnkit: {out} holds no checkpoint yet: training from the start", file=sys.stderr)
        return None
    if resume:
        state, arrays = load_checkpoint(out)
        dropout_rng = state["position"].pop("dropout_rng", None)  # 0.2.0 kept the numpy engine's here
        if dropout_rng is not None:
            arrays["rng.numpy"] = np.frombuffer(json.dumps(dropout_rng).encode(), dtype=np.uint8)
        return state, arrays
    if out.exists() and not force:
        raise RnnkitError(f"{out} already exists; pass --force to replace it, --resume to continue it, "
                          "or choose another --out")
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not ((out / "config.json").exists() or has_checkpoint(out))):
            raise RnnkitError(f"{out} is not a model directory that rnnkit wrote; choose another --out")
        shutil.rmtree(out)
    return None
