"""The training loop, one for every model kind.

A ``Task`` brings a kind's data and model: its batches, one training step, an evaluation. The
loop brings the rest: epochs and the stop conditions, evaluation every ``evaluate_every`` epochs
(halving the rate when the held-out loss rose — the seed's rule), the weights of the best
evaluation (the engine holds them at the end, unless ``keep="last"``), checkpoints at every
evaluation and on SIGINT or SIGTERM, exact resume, a NaN guard and the run's record. The summary
(of the kept weights) and the history come back; writing the model is the caller's, who knows its kind.

The loop knows where it stands in a run of many processes (``Placement``): only the main process
writes checkpoints and tells the story.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.engine import Engine
from rnnkit.train.checkpoint import save_checkpoint
from rnnkit.train.record import RunRecord


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint."""


@dataclass(frozen=True)
class Schedule:
    lr: float
    epochs: float
    max_steps: int | None = None
    max_time: float | None = None  # seconds of this session
    evaluate_every: float = 1.0  # epochs
    halve_lr: bool = True
    seed: int = 0  # of the data order


@dataclass(frozen=True)
class Placement:
    """This process's place in a run of ``world_size`` processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class Task(Protocol):
    """One kind's data and model, as the loop sees them."""

    engine: Engine
    unit: str  # what a step counts: "tokens" for a language model
    eval_split: str
    steps_per_epoch: int

    def batches(self, rng: np.random.Generator, start: int) -> Iterator[Any]:
        """The batches of one epoch, from the ``start``-th; its order comes from ``rng``."""

    def initial_carry(self) -> Any:
        """What an epoch's first step starts from (stream mode: a zero state; else None)."""

    def train_step(self, batch: Any, lr: float, carry: Any) -> tuple[float, int, Any]:
        """One optimizer step: the summed loss, the units it covered, the carry for the next step."""

    def evaluate(self) -> dict[str, float]:
        """``loss`` (mean per unit on ``eval_split``) and any other metric worth a line."""


def fit(task: Task, schedule: Schedule, out: Path, record: RunRecord, *, meta: dict[str, Any],
        resume: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None, keep: str = "best",
        placement: Placement = Placement()) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train ``task`` by ``schedule``; checkpoints go to ``out`` (with ``meta`` in their state).
    Returns the summary and the history of evaluations; the engine ends with the weights of the
    lowest held-out loss (``keep="best"``) or the last ones (``"last"``)."""
    if keep not in ("best", "last"):
        raise RnnkitError(f"--keep must be best or last (got {keep!r})")
    engine, unit, split = task.engine, task.unit, task.eval_split
    rng = np.random.default_rng(schedule.seed)
    position = {"step": 0, "epoch": 0, "batch": 0, unit: 0, "seconds": 0.0, "step_seconds": 0.0, "lr": schedule.lr,
                "epoch_rng": rng.bit_generator.state, "train_loss_sum": 0.0, f"train_{unit}": 0}
    history: list[dict[str, Any]] = []
    carry = None
    best: dict[str, np.ndarray] = {}  # the weights of the lowest held-out loss so far
    if resume is not None:
        state, arrays = resume
        position, history = state["position"], state["history"]
        best = {k.removeprefix("best."): v for k, v in arrays.items() if k.startswith("best.")}
        engine.load_params({k.removeprefix("param."): v for k, v in arrays.items() if k.startswith("param.")})
        engine.load_state_arrays(arrays, position["step"])
        rng.bit_generator.state = position["epoch_rng"]
        if "hidden" in arrays:
            carry = engine.state_from_numpy(arrays["hidden"])
        record.log(f"resuming {out} at step {position['step']:,} (epoch {position['step'] / task.steps_per_epoch:.2f})")

    total_steps = math.ceil(schedule.epochs * task.steps_per_epoch)
    if schedule.max_steps is not None:
        total_steps = min(total_steps, schedule.max_steps)
    eval_interval = max(1, round(schedule.evaluate_every * task.steps_per_epoch))
    started = time.perf_counter() - position["seconds"]
    session_started = time.perf_counter()
    stop: dict[str, int | None] = {"signal": None}

    def speed() -> float:
        return position[unit] / position["step_seconds"] if position["step_seconds"] else 0.0

    def checkpoint() -> None:
        if not placement.is_main:
            return
        position["seconds"] = time.perf_counter() - started
        arrays = {f"param.{k}": v for k, v in engine.params().items()}
        arrays.update(engine.state_arrays())
        if carry is not None:
            arrays["hidden"] = engine.state_to_numpy(carry)
        arrays.update({f"best.{k}": v for k, v in best.items()})
        save_checkpoint(out, {**meta, "position": position, "history": history}, arrays)

    def evaluate(final: bool = False) -> None:
        metrics = task.evaluate()
        loss = metrics["loss"]
        if not math.isfinite(loss):
            raise RnnkitError(f"the {split} loss is {loss} at step {position['step']} (training diverged); "
                              "lower --lr or set --clip; the last good checkpoint is kept")
        seen = position[f"train_{unit}"]
        entry = {"step": position["step"], "epoch": round(position["step"] / task.steps_per_epoch, 4),
                 unit: position[unit], "seconds": round(time.perf_counter() - started, 2), "lr": position["lr"],
                 "train_loss": position["train_loss_sum"] / seen if seen else None,
                 **{f"{split}_{k}": v for k, v in metrics.items()}}
        if schedule.halve_lr and history and not final and loss > history[-1][f"{split}_loss"]:
            position["lr"] *= 0.5
            entry["lr_halved_to"] = position["lr"]
        history.append(entry)
        if "best" not in position or loss < position["best"][f"{split}_loss"]:
            position["best"] = {"step": position["step"], f"{split}_loss": loss}
            best.clear()
            best.update({k: v.copy() for k, v in engine.params().items()})
        position["train_loss_sum"], position[f"train_{unit}"] = 0.0, 0
        if placement.is_main:
            record.evaluation(entry, split, speed())
        checkpoint()

    def on_signal(signum, frame) -> None:
        stop["signal"] = signum

    handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stopped = "epochs" if schedule.max_steps is None or total_steps < schedule.max_steps else "max_steps"
    record.start(total_steps, position["step"])
    try:
        if not history:
            evaluate()
        while position["step"] < total_steps and stopped != "max_time":
            if position["batch"] == 0:  # a new epoch: its batch order comes from this RNG state
                position["epoch_rng"] = rng.bit_generator.state
                carry = task.initial_carry()
            for batch in task.batches(rng, position["batch"]):
                step_started = time.perf_counter()
                loss, units, carry = task.train_step(batch, position["lr"], carry)
                if not math.isfinite(loss):
                    raise RnnkitError(f"the training loss became {loss} at step {position['step'] + 1} "
                                      "(training diverged); lower --lr or set --clip; the last good checkpoint is kept")
                position["step_seconds"] += time.perf_counter() - step_started
                position["step"] += 1
                position["batch"] += 1
                position[unit] += units
                position["train_loss_sum"] += loss
                position[f"train_{unit}"] += units
                record.step(loss / units, speed())
                if position["step"] % eval_interval == 0:
                    evaluate()
                if stop["signal"] is not None:
                    checkpoint()
                    raise Interrupted(f"stopped by signal {stop['signal']} at step {position['step']:,}; "
                                      f"checkpoint saved: continue with the same command and --resume")
                if position["step"] >= total_steps:
                    break
                if schedule.max_time is not None and time.perf_counter() - session_started >= schedule.max_time:
                    stopped = "max_time"
                    break
            if position["batch"] >= task.steps_per_epoch:
                position["epoch"] += 1
                position["batch"] = 0
        if history[-1]["step"] != position["step"]:
            evaluate(final=True)  # no halving: there is no more training to slow down
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        record.close()

    kept = history[-1]
    if keep == "best":
        engine.load_params(best)
        kept = next(h for h in history if h["step"] == position["best"]["step"])
    summary = {
        "train_loss": next((h["train_loss"] for h in reversed(history) if h["train_loss"] is not None), None),
        **{k: v for k, v in kept.items() if k.startswith(split + "_")}, "kept": keep, "best": position["best"],
        f"last_{split}_loss": history[-1][f"{split}_loss"],
        f"{unit}_per_second": speed(), "seconds": round(time.perf_counter() - started, 2), "steps": position["step"],
        unit: position[unit], "epochs": round(position["step"] / task.steps_per_epoch, 4), "stopped_by": stopped,
        "final_lr": position["lr"],
    }
    return summary, history
