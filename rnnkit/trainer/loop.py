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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.models.engine import Trainable
from rnnkit.trainer.checkpoint import save_checkpoint
from rnnkit.trainer.distributed import Placement
from rnnkit.trainer.options import STEPS_CAP, UNBOUNDED_EPOCHS, LoopOptions, steps_cap
from rnnkit.trainer.record import RunRecord

POINTS_PER_RUN = 100  # training points in the record, whatever the run's length
POINT_SECONDS = 30.0  # and at least this often


class Interrupted(BaseException):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint (``signum``: which). Like
    ``KeyboardInterrupt``, not an ``Exception``: a caller's ``except Exception`` around
    ``rnnkit.train`` does not swallow a request to stop, and the program ends. The signal
    handlers training replaced are restored before it is raised."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class Task(Protocol):
    """One kind's data and model, as the loop sees them."""

    engine: Trainable
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

    # Optional: ``finish_evaluations``, the work a kind does after the loop (a ranker weighing its
    # stages on validation), counted in evaluations; --max-time keeps time for it (default 0).


def fit(task: Task, schedule: LoopOptions, out: Path, record: RunRecord, *, meta: dict[str, Any],
        resume: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None,
        placement: Placement = Placement(),
        started: float | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train ``task`` by ``schedule`` (resolved options: the rate, its decay, the budget,
    evaluation); checkpoints go to ``out`` (with ``meta`` in their state). Returns the summary
    and the run's record, in order: training points (``train_loss``) and evaluations
    (``{split}_loss``), each with its ``step``. The engine ends with the weights of the lowest
    held-out loss (``keep="best"``) or the last ones (``"last"``). ``started``: when the command
    began (``time.perf_counter()``), from which ``--max-time`` counts: reading the data, the
    evaluations and the work after the loop are inside it."""
    run = _Run(task, schedule, out, record, meta, placement, started)
    if resume is not None:
        run.restore(*resume)
    handlers = {s: signal.signal(s, run.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        run.train()
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        record.close()
    return run.summary(schedule.keep), run.log


@dataclass
class Point:
    """What the next training point averages: the steps since the last one."""

    loss: float = 0.0
    units: int = 0
    step_seconds: float = 0.0

    def add(self, loss: float, units: int, seconds: float) -> None:
        self.loss, self.units, self.step_seconds = self.loss + loss, self.units + units, self.step_seconds + seconds


@dataclass
class Position:
    """Where a run stands: everything a checkpoint resumes from (saved as JSON, ``units`` under
    the task's unit, e.g. "tokens")."""

    lr: float  # before the decay's share; halved at each rise of the held-out loss
    epoch_rng: dict[str, Any]  # the data order's generator at the start of this epoch
    step: int = 0
    epoch: int = 0
    batch: int = 0  # of this epoch
    units: int = 0  # trained on so far
    seconds: float = 0.0  # of the run, over all its sessions
    step_seconds: float = 0.0  # of those, in steps
    since_best: int = 0  # evaluations since the lowest held-out loss
    best: dict[str, Any] | None = None  # its step and loss
    point: Point = field(default_factory=Point)

    def to_json(self, unit: str) -> dict[str, Any]:
        data = asdict(self)
        data[unit] = data.pop("units")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], unit: str) -> Position:
        """A saved position; one of 0.2's (no point, sums of its own) starts a new point."""
        known = {f.name for f in fields(cls)} - {"units", "point"}
        return cls(**{k: v for k, v in data.items() if k in known}, units=data[unit],
                   point=Point(**data.get("point", {})))


class _Run:
    """One run: the loop (``train`` and ``step``) and its bookkeeping beside it, each a small piece:
    the rate, the stopping rules, the evaluations with the best weights, the training points, the
    checkpoints."""

    def __init__(self, task: Task, schedule: LoopOptions, out: Path, record: RunRecord, meta: dict[str, Any],
                 placement: Placement, started: float | None = None) -> None:
        self.task, self.schedule, self.out, self.record, self.meta = task, schedule, out, record, meta
        self.placement, self.unit, self.split = placement, task.unit, task.eval_split
        self.rng = np.random.default_rng(schedule.seed)  # the data order
        self.position = Position(schedule.lr, self.rng.bit_generator.state)
        self.log: list[dict[str, Any]] = []  # training points and evaluations, in order
        self.best: dict[str, np.ndarray] = {}  # the weights of the lowest held-out loss so far
        self.carry: Any = None  # the state one step hands the next (stream mode)
        self.received: int | None = None  # a signal this process caught
        self.signal: int | None = None  # the one every process stops for, agreed after a step
        self.late = False  # --max-time has passed (on some process)
        self.out_of_patience = False
        self.elapsed = 0.0  # of this session's --max-time, agreed after each step (the mean over processes)
        total = math.ceil(schedule.epochs * task.steps_per_epoch)
        self.total_steps = total if schedule.max_steps is None else min(total, schedule.max_steps)
        self.budget = "epochs" if schedule.max_steps is None or total < schedule.max_steps else "max_steps"
        self.stopped: str | None = None
        self.resumed_from: int | None = None  # the checkpoint's step
        self.eval_interval = max(1, round(schedule.evaluate_every * task.steps_per_epoch))
        # About POINTS_PER_RUN training points, whichever of steps and --max-time ends the run.
        self.point_interval = max(1, self.total_steps // POINTS_PER_RUN)
        self.point_seconds = min(POINT_SECONDS, (schedule.max_time or math.inf) / POINTS_PER_RUN)
        now = time.perf_counter()
        self.started = now  # of the run, over all its sessions (moved back on resume)
        self.last_point = now
        self.session_started = now if started is None else started  # the command's start: --max-time counts from it
        self.evaluation_seconds = 0.0  # the last evaluation's: --max-time keeps time for the one after the loop

    def restore(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        engine = self.task.engine
        self.position = Position.from_json(state["position"], self.unit)
        self.resumed_from = self.position.step
        self.started = time.perf_counter() - self.position.seconds
        # Checkpoints of 0.3 and before kept evaluations alone, as "history".
        self.log = state.get("log") or state["history"]
        self.best = {k.removeprefix("best."): v for k, v in arrays.items() if k.startswith("best.")}
        engine.load_params({k.removeprefix("param."): v for k, v in arrays.items() if k.startswith("param.")})
        if not self.placement.is_main:  # the checkpoint holds the main process's generators: keep this one's own
            arrays = {k: v for k, v in arrays.items() if not k.startswith("rng.")}
        engine.load_state_arrays(arrays, self.position.step)
        self.rng.bit_generator.state = self.position.epoch_rng
        if "hidden" in arrays:  # the whole batch's state: this process carries its rows
            self.carry = engine.state_from_numpy(np.ascontiguousarray(self.placement.own_rows(arrays["hidden"])))
        self.record.log(f"resuming {self.out} at step {self.position.step:,} "
                        f"(epoch {self.position.step / self.task.steps_per_epoch:.2f})")

    def on_signal(self, signum, frame) -> None:
        self.received = signum

    # ------------------------------------------------------------------------------ the loop

    def train(self) -> None:
        position, task = self.position, self.task
        ended_by_time = self.budget == "epochs" and self.schedule.epochs >= UNBOUNDED_EPOCHS \
            and self.schedule.max_time is not None
        self.record.start(None if ended_by_time else self.total_steps, position.step, self.schedule.max_time)
        if (cap := steps_cap()) is not None:
            self.record.log(f"{STEPS_CAP}={cap}: at most {cap:,} steps, whatever the command says")
        if not self.evaluations():
            self.evaluate()
        if self.past_max_time():
            self.record.log(f"--max-time {self.schedule.max_time:g} s is too short: reading the data and one "
                            f"evaluation ({self.evaluation_seconds:.1f} s) took "
                            f"{time.perf_counter() - self.session_started:.1f} s, and the run must end with another; "
                            "give it more time, or evaluate less (--evaluate-every, a kind's --eval-rows)")
        self.stopped = self.stop_reason()
        while self.stopped is None:
            if position.batch == 0:  # a new epoch: its batch order comes from this generator state
                position.epoch_rng = self.rng.bit_generator.state
                self.carry = task.initial_carry()
            for batch in task.batches(self.rng, position.batch):
                self.step(batch)
                if self.signal is not None:
                    self.checkpoint()
                    raise Interrupted(f"stopped by signal {self.signal} at step {position.step:,}; "
                                      f"checkpoint saved: continue with the same command and --resume", self.signal)
                self.stopped = self.stop_reason()
                if self.stopped:
                    break
            else:  # the epoch's last batch is done (a run stopped on it starts the next when resumed)
                position.epoch, position.batch = position.epoch + 1, 0
        if self.evaluations()[-1]["step"] != position.step:
            self.evaluate(final=True)  # no halving: there is no more training to slow down

    def step(self, batch: Any) -> None:
        position = self.position
        started = time.perf_counter()
        loss, units, self.carry = self.task.train_step(batch, self.rate(), self.carry)
        loss, units = self.agree(loss, units)
        seconds = time.perf_counter() - started
        position.step += 1
        position.batch += 1
        position.units += units
        position.step_seconds += seconds
        position.point.add(loss, units, seconds)
        self.record.step(loss / units, self.speed())
        if position.step % self.eval_interval == 0:
            self.evaluate()
            # The evaluation may have spent the rest of the budget: ask again, every process at this step.
            self.late = self.late or bool(self.placement.sum([self.past_max_time()])[0])
        elif position.step % self.point_interval == 0 or time.perf_counter() - self.last_point >= self.point_seconds:
            self.add_point()

    # ------------------------------------------------------------------------------ bookkeeping

    def agree(self, loss: float, units: int) -> tuple[float, int]:
        """Every process takes the same decisions: on the whole step's loss and units (returned), on
        stopping together (a signal, the time), on the rate."""
        late, elapsed = self.past_max_time(), time.perf_counter() - self.session_started
        loss, units, signalled, late, elapsed = self.placement.sum([loss, units, self.received is not None, late,
                                                                    elapsed])
        self.late, self.elapsed = bool(late), elapsed / self.placement.world_size
        if signalled:  # this process's signal, or another's
            self.signal = self.received or signal.SIGTERM
        if not math.isfinite(loss):
            raise RnnkitError(f"the training loss became {loss} at step {self.position.step + 1} "
                              "(training diverged); lower --lr or set --clip; the last good checkpoint is kept")
        return loss, int(units)

    def stop_reason(self) -> str | None:
        """Why the run stops now, if it does: its budget of steps is spent, patience, or time."""
        if self.position.step >= self.total_steps:
            return self.budget
        if self.out_of_patience:
            return "patience"
        return "max_time" if self.late else None

    def past_max_time(self) -> bool:
        """Whether this process has spent this session's --max-time, less the time the work after the
        loop will take (the final evaluation, and a kind's own: ``finish_evaluations``), so that the
        whole command ends within it."""
        max_time = self.schedule.max_time
        return max_time is not None and time.perf_counter() - self.session_started >= self.time_to_train()

    def time_to_train(self) -> float:
        """Of --max-time, what is left to train in: the whole less the work after the loop."""
        after = self.evaluation_seconds * (1 + getattr(self.task, "finish_evaluations", 0))
        return max(0.0, (self.schedule.max_time or math.inf) - after)

    def rate(self) -> float:
        """The learning rate of the next step: the current one (halved at each rise) times the decay's
        share, at the larger of the steps' and the time budget's progress."""
        progress = self.position.step / self.total_steps
        if self.schedule.max_time:
            spent = 1.0 if self.late else self.elapsed / max(self.time_to_train(), 1e-9)  # the time to train in
            progress = max(progress, min(1.0, spent))
        return self.position.lr * self.schedule.factor(progress)

    def speed(self) -> float:
        position = self.position
        return position.units / position.step_seconds if position.step_seconds else 0.0

    def stamp(self) -> dict[str, Any]:
        step = self.position.step
        return {"step": step, "epoch": round(step / self.task.steps_per_epoch, 4), self.unit: self.position.units,
                "seconds": round(time.perf_counter() - self.started, 2), "lr": self.rate()}

    def add_point(self) -> None:
        """A training point: the mean loss per unit and the speed since the last one."""
        point = self.position.point
        self.last_point = time.perf_counter()
        if not point.units:
            return
        entry = {**self.stamp(), "train_loss": point.loss / point.units,
                 f"{self.unit}_per_second": round(point.units / point.step_seconds, 1)}
        self.position.point = Point()
        self.log.append(entry)
        if self.placement.is_main:
            self.record.point(entry)

    def evaluations(self) -> list[dict[str, Any]]:
        return [e for e in self.log if f"{self.split}_loss" in e]

    def evaluate(self, final: bool = False) -> None:
        """Evaluate (on the main process, which tells the others), halve the rate on a rise, keep
        the best weights, count patience, record, checkpoint."""
        self.add_point()
        position, split = self.position, self.split
        started = time.perf_counter()
        metrics = self.placement.broadcast(self.task.evaluate() if self.placement.is_main else None)
        self.evaluation_seconds = time.perf_counter() - started
        loss = metrics["loss"]
        if not math.isfinite(loss):
            raise RnnkitError(f"the {split} loss is {loss} at step {position.step} (training diverged); "
                              "lower --lr or set --clip; the last good checkpoint is kept")
        entry = {**self.stamp(), **{f"{split}_{k}": v for k, v in metrics.items()}}
        previous = self.evaluations()
        if self.schedule.halve_lr and previous and not final and loss > previous[-1][f"{split}_loss"]:
            position.lr *= 0.5
            entry["lr_halved_to"] = position.lr
        self.log.append(entry)
        self.keep_if_best(loss)
        if self.placement.is_main:
            train = next((e["train_loss"] for e in reversed(self.log) if "train_loss" in e), None)
            self.record.evaluation(entry, split, self.speed(), train)
        self.checkpoint()
        self.last_point = time.perf_counter()  # the next point's 30 s count training time, not this

    def keep_if_best(self, loss: float) -> None:
        """The weights of a new lowest held-out loss are kept; otherwise patience runs down."""
        position = self.position
        if position.best is None or loss < position.best[f"{self.split}_loss"]:
            position.best, position.since_best = {"step": position.step, f"{self.split}_loss": loss}, 0
            if self.placement.is_main:  # the only one to write them
                self.best = {k: v.copy() for k, v in self.task.engine.params().items()}
        else:
            position.since_best += 1
            patience = self.schedule.patience
            self.out_of_patience = patience is not None and position.since_best >= patience

    def checkpoint(self) -> None:
        engine = self.task.engine
        hidden = None if self.carry is None else self.placement.gather_rows(engine.state_to_numpy(self.carry))
        if not self.placement.is_main:
            return
        self.position.seconds = time.perf_counter() - self.started
        arrays = {f"param.{k}": v for k, v in engine.params().items()}
        arrays.update(engine.state_arrays())
        if hidden is not None:
            arrays["hidden"] = hidden
        arrays.update({f"best.{k}": v for k, v in self.best.items()})
        save_checkpoint(self.out, {**self.meta, "position": self.position.to_json(self.unit), "log": self.log}, arrays)

    def summary(self, keep: str) -> dict[str, Any]:
        position, split, unit = self.position, self.split, self.unit
        evaluations = self.evaluations()
        kept = evaluations[-1]
        if keep == "best":
            if self.placement.is_main:
                self.task.engine.load_params(self.best)
            kept = next(e for e in evaluations if e["step"] == position.best["step"])
        return {
            "train_loss": next((e["train_loss"] for e in reversed(self.log) if "train_loss" in e), None),
            **{k: v for k, v in kept.items() if k.startswith(split + "_")}, "kept": keep, "best": position.best,
            f"last_{split}_loss": evaluations[-1][f"{split}_loss"],
            f"{unit}_per_second": self.speed(), "seconds": round(time.perf_counter() - self.started, 2),
            "steps": position.step, unit: position.units,
            "epochs": round(position.step / self.task.steps_per_epoch, 4), "stopped_by": self.stopped,
            "final_lr": self.rate(), "resumed_from": self.resumed_from,
        }
