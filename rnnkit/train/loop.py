"""The training loop, one for every model kind.

A ``Task`` brings a kind's data and model: its batches, one training step, an evaluation. The
loop brings the rest: epochs and the stop conditions (steps, time, ``patience`` evaluations
without improvement), evaluation every ``evaluate_every`` epochs (halving the rate when the
held-out loss rose — the seed's rule), the weights of the best evaluation (the engine holds them
at the end, unless ``keep="last"``), checkpoints at every evaluation and on SIGINT or SIGTERM,
exact resume, a NaN guard and the run's record: a training point (the mean loss since the last
one, the rate, the speed) about a hundred times a run and at least every 30 s, and each
evaluation. The summary (of the kept weights) and the record come back; writing the model is the
caller's, who knows its kind.

In a run of many processes (``Placement``; each process's task reads its share of every batch)
the processes agree after each step on the loss, the units and whether to stop (a signal, the
time), so that they stop at the same step; the main process evaluates and tells the others the
result, and writes the checkpoints (with the whole batch's carried state) and the record.
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
from rnnkit.train.distributed import Placement
from rnnkit.train.record import RunRecord

POINTS_PER_RUN = 100  # training points in the record, whatever the run's length
POINT_SECONDS = 30.0  # and at least this often


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
    patience: int | None = None  # evaluations without a new best before stopping
    decay: str = "none"  # or linear, cosine: the rate falls to 0 over the run's budget (steps or max_time)

    def __post_init__(self) -> None:  # every trainer's options meet here, before anything is written
        if self.lr <= 0 or self.epochs <= 0 or self.evaluate_every <= 0:
            raise RnnkitError("--lr, --epochs and --evaluate-every must be above 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise RnnkitError("--max-steps must be at least 1")
        if self.patience is not None and self.patience < 1:
            raise RnnkitError("--patience must be at least 1 (evaluations without improvement)")
        if self.decay not in DECAYS:
            raise RnnkitError(f"unknown --decay {self.decay!r}; use {', '.join(DECAYS)}")

    def factor(self, progress: float) -> float:
        """The share of the rate at ``progress`` (0 to 1) through the run's budget."""
        progress = min(max(progress, 0.0), 1.0)
        return DECAYS[self.decay](progress)


# How the rate falls over a run's budget: a known budget is best spent ending near a zero rate.
DECAYS = {"none": lambda p: 1.0, "linear": lambda p: 1.0 - p, "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p))}


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
    Returns the summary and the run's record, in order: training points (``train_loss``) and
    evaluations (``{split}_loss``), each with its ``step``. The engine ends with the weights of
    the lowest held-out loss (``keep="best"``) or the last ones (``"last"``)."""
    if keep not in ("best", "last"):
        raise RnnkitError(f"--keep must be best or last (got {keep!r})")
    run = _Run(task, schedule, out, record, meta, placement)
    if resume is not None:
        run.restore(*resume)
    handlers = {s: signal.signal(s, run.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        run.train()
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        record.close()
    return run.summary(keep), run.log


class _Run:
    """One run's state (``position``: everything a checkpoint resumes from) and its steps."""

    def __init__(self, task: Task, schedule: Schedule, out: Path, record: RunRecord, meta: dict[str, Any],
                 placement: Placement) -> None:
        self.task, self.schedule, self.out, self.record, self.meta = task, schedule, out, record, meta
        self.placement, self.unit, self.split = placement, task.unit, task.eval_split
        self.rng = np.random.default_rng(schedule.seed)
        self.position: dict[str, Any] = {
            "step": 0, "epoch": 0, "batch": 0, self.unit: 0, "seconds": 0.0, "step_seconds": 0.0,
            "lr": schedule.lr, "epoch_rng": self.rng.bit_generator.state, "since_best": 0,
            "point": {"loss": 0.0, "units": 0, "step_seconds": 0.0}}  # what the next training point averages
        self.log: list[dict[str, Any]] = []  # training points and evaluations, in order
        self.best: dict[str, np.ndarray] = {}  # the weights of the lowest held-out loss so far
        self.carry: Any = None
        self.received: int | None = None  # a signal this process caught
        self.signal: int | None = None  # the one every process stops for, agreed after a step
        self.late = False  # --max-time has passed (on some process)
        self.elapsed = 0.0  # of this session's --max-time, agreed after each step (the mean over processes)
        total = math.ceil(schedule.epochs * task.steps_per_epoch)
        self.total_steps = total if schedule.max_steps is None else min(total, schedule.max_steps)
        self.eval_interval = max(1, round(schedule.evaluate_every * task.steps_per_epoch))
        # About POINTS_PER_RUN training points, whichever of steps and --max-time ends the run.
        self.point_interval = max(1, self.total_steps // POINTS_PER_RUN)
        self.point_seconds = min(POINT_SECONDS, (schedule.max_time or math.inf) / POINTS_PER_RUN)
        self.stopped = "epochs" if schedule.max_steps is None or total < schedule.max_steps else "max_steps"

    def restore(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        engine = self.task.engine
        self.position.update(state["position"])
        # Checkpoints of 0.3 and before kept evaluations alone, as "history".
        self.log = state.get("log") or state["history"]
        self.best = {k.removeprefix("best."): v for k, v in arrays.items() if k.startswith("best.")}
        engine.load_params({k.removeprefix("param."): v for k, v in arrays.items() if k.startswith("param.")})
        if not self.placement.is_main:  # the checkpoint holds the main process's generators: keep this one's own
            arrays = {k: v for k, v in arrays.items() if not k.startswith("rng.")}
        engine.load_state_arrays(arrays, self.position["step"])
        self.rng.bit_generator.state = self.position["epoch_rng"]
        if "hidden" in arrays:  # the whole batch's state: this process carries its rows
            self.carry = engine.state_from_numpy(np.ascontiguousarray(self.placement.own_rows(arrays["hidden"])))
        self.record.log(f"resuming {self.out} at step {self.position['step']:,} "
                        f"(epoch {self.position['step'] / self.task.steps_per_epoch:.2f})")

    def on_signal(self, signum, frame) -> None:
        self.received = signum

    def train(self) -> None:
        position, task = self.position, self.task
        self.started = time.perf_counter() - position["seconds"]
        self.session_started = self.last_point = time.perf_counter()
        self.record.start(self.total_steps, position["step"])
        if not self.evaluations():
            self.evaluate()
        while position["step"] < self.total_steps and self.stopped in ("epochs", "max_steps"):
            if position["batch"] == 0:  # a new epoch: its batch order comes from this RNG state
                position["epoch_rng"] = self.rng.bit_generator.state
                self.carry = task.initial_carry()
            for batch in task.batches(self.rng, position["batch"]):
                self.step(batch)
                if self.signal is not None:
                    self.checkpoint()
                    raise Interrupted(f"stopped by signal {self.signal} at step {position['step']:,}; "
                                      f"checkpoint saved: continue with the same command and --resume")
                if position["step"] >= self.total_steps or self.stopped == "patience":
                    break
                if self.late:
                    self.stopped = "max_time"
                    break
            if position["batch"] >= task.steps_per_epoch:
                position["epoch"] += 1
                position["batch"] = 0
        if self.evaluations()[-1]["step"] != position["step"]:
            self.evaluate(final=True)  # no halving: there is no more training to slow down

    def step(self, batch: Any) -> None:
        position, point = self.position, self.position["point"]
        started = time.perf_counter()
        loss, units, self.carry = self.task.train_step(batch, self.rate(), self.carry)
        late, elapsed = self.past_max_time(), time.perf_counter() - self.session_started
        # Every process takes the same decisions: on the whole step's loss, stopping together, the rate.
        loss, units, signalled, late, elapsed = self.placement.sum([loss, units, self.received is not None, late,
                                                                    elapsed])
        units, self.late, self.elapsed = int(units), bool(late), elapsed / self.placement.world_size
        if signalled:  # this process's signal, or another's
            self.signal = self.received or signal.SIGTERM
        if not math.isfinite(loss):
            raise RnnkitError(f"the training loss became {loss} at step {position['step'] + 1} "
                              "(training diverged); lower --lr or set --clip; the last good checkpoint is kept")
        seconds = time.perf_counter() - started
        position["step_seconds"] += seconds
        position["step"] += 1
        position["batch"] += 1
        position[self.unit] += units
        point["loss"] += loss
        point["units"] += units
        point["step_seconds"] += seconds
        self.record.step(loss / units, self.speed())
        if position["step"] % self.eval_interval == 0:
            self.evaluate()
            # The evaluation may have spent the rest of the budget: ask again, every process at this step.
            self.late = self.late or bool(self.placement.sum([self.past_max_time()])[0])
        elif (position["step"] % self.point_interval == 0
              or time.perf_counter() - self.last_point >= self.point_seconds):
            self.add_point()

    def past_max_time(self) -> bool:
        """Whether this process has spent this session's --max-time."""
        max_time = self.schedule.max_time
        return max_time is not None and time.perf_counter() - self.session_started >= max_time

    def rate(self) -> float:
        """The learning rate of the next step: the current one (halved at each rise) times the decay's
        share, at the larger of the steps' and the time budget's progress."""
        progress = self.position["step"] / self.total_steps
        if self.schedule.max_time:
            progress = max(progress, self.elapsed / self.schedule.max_time)
        return self.position["lr"] * self.schedule.factor(progress)

    def speed(self) -> float:
        return self.position[self.unit] / self.position["step_seconds"] if self.position["step_seconds"] else 0.0

    def stamp(self) -> dict[str, Any]:
        step = self.position["step"]
        return {"step": step, "epoch": round(step / self.task.steps_per_epoch, 4), self.unit: self.position[self.unit],
                "seconds": round(time.perf_counter() - self.started, 2), "lr": self.rate()}

    def add_point(self) -> None:
        """A training point: the mean loss per unit and the speed since the last one."""
        point = self.position["point"]
        self.last_point = time.perf_counter()
        if not point["units"]:
            return
        entry = {**self.stamp(), "train_loss": point["loss"] / point["units"],
                 f"{self.unit}_per_second": round(point["units"] / point["step_seconds"], 1)}
        self.position["point"] = {"loss": 0.0, "units": 0, "step_seconds": 0.0}
        self.log.append(entry)
        if self.placement.is_main:
            self.record.point(entry)

    def evaluations(self) -> list[dict[str, Any]]:
        return [e for e in self.log if f"{self.split}_loss" in e]

    def evaluate(self, final: bool = False) -> None:
        self.add_point()
        position, split = self.position, self.split
        metrics = self.placement.broadcast(self.task.evaluate() if self.placement.is_main else None)
        loss = metrics["loss"]
        if not math.isfinite(loss):
            raise RnnkitError(f"the {split} loss is {loss} at step {position['step']} (training diverged); "
                              "lower --lr or set --clip; the last good checkpoint is kept")
        entry = {**self.stamp(), **{f"{split}_{k}": v for k, v in metrics.items()}}
        previous = self.evaluations()
        if self.schedule.halve_lr and previous and not final and loss > previous[-1][f"{split}_loss"]:
            position["lr"] *= 0.5
            entry["lr_halved_to"] = position["lr"]
        self.log.append(entry)
        if "best" not in position or loss < position["best"][f"{split}_loss"]:
            position["best"] = {"step": position["step"], f"{split}_loss": loss}
            position["since_best"] = 0
            if self.placement.is_main:  # the only one to write them
                self.best = {k: v.copy() for k, v in self.task.engine.params().items()}
        else:
            position["since_best"] += 1
            if self.schedule.patience is not None and position["since_best"] >= self.schedule.patience:
                self.stopped = "patience"
        if self.placement.is_main:
            train = next((e["train_loss"] for e in reversed(self.log) if "train_loss" in e), None)
            self.record.evaluation(entry, split, self.speed(), train)
        self.checkpoint()
        self.last_point = time.perf_counter()  # the next point's 30 s count training time, not this

    def checkpoint(self) -> None:
        engine = self.task.engine
        hidden = None if self.carry is None else self.placement.gather_rows(engine.state_to_numpy(self.carry))
        if not self.placement.is_main:
            return
        self.position["seconds"] = time.perf_counter() - self.started
        arrays = {f"param.{k}": v for k, v in engine.params().items()}
        arrays.update(engine.state_arrays())
        if hidden is not None:
            arrays["hidden"] = hidden
        arrays.update({f"best.{k}": v for k, v in self.best.items()})
        save_checkpoint(self.out, {**self.meta, "position": self.position, "log": self.log}, arrays)

    def summary(self, keep: str) -> dict[str, Any]:
        position, split, unit = self.position, self.split, self.unit
        evaluations = self.evaluations()
        kept = evaluations[-1]
        if keep == "best":
            if self.placement.is_main:
                self.task.engine.load_params(self.best)
            kept = next(e for e in evaluations if e["step"] == position["best"]["step"])
        return {
            "train_loss": next((e["train_loss"] for e in reversed(self.log) if "train_loss" in e), None),
            **{k: v for k, v in kept.items() if k.startswith(split + "_")}, "kept": keep, "best": position["best"],
            f"last_{split}_loss": evaluations[-1][f"{split}_loss"],
            f"{unit}_per_second": self.speed(), "seconds": round(time.perf_counter() - self.started, 2),
            "steps": position["step"], unit: position[unit],
            "epochs": round(position["step"] / self.task.steps_per_epoch, 4), "stopped_by": self.stopped,
            "final_lr": self.rate(),
        }
