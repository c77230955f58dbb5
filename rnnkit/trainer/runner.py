"""A training run, the same for every kind: where it runs, its checkpoint, its record, its model.

A kind's trainer resolves its options (a ``LoopOptions``) and hands ``run`` a ``setup``: given
this process's ``Placement``, the checkpoint to resume from (or None) and the log (silent on all
but the main process), it reads the data and returns a ``Job`` — the task the loop trains, and
how to write the model directory from the run's summary. ``run`` does the rest for every kind
alike: it joins the processes ``torchrun`` started (one process without it), opens or resumes
``out`` (the main process first), keeps the record (metrics, plot, TensorBoard) on the main
process, runs the loop, and writes the model there.
``open_trainer`` gives a setup its engine: the options' optimizer, precision and micro-batches,
each process its own dropout stream, and DistributedDataParallel in a run of many processes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles, write_model_files
from rnnkit.models.engine import Trainable, check_engine_can, open_engine
from rnnkit.trainer.checkpoint import open_run
from rnnkit.trainer.distributed import Placement, join, leave
from rnnkit.trainer.loop import Task, fit
from rnnkit.trainer.options import LoopOptions
from rnnkit.trainer.record import RunRecord

Checkpoint = tuple[dict[str, Any], dict[str, np.ndarray]]
Log = Callable[[str], None]
Setup = Callable[["Placement", "Checkpoint | None", Log], "Job"]  # a kind's: this process's Job


@dataclass
class Job:
    """What a kind brings to a run."""

    task: Task
    model_files: Callable[[dict[str, Any]], ModelFiles]  # the model directory's files, given the run's summary
    describe: str | None = None  # a line saying what the run trains, logged before it starts
    meta: dict[str, Any] = field(default_factory=dict)  # kept in each checkpoint beside the options (the data)
    summary: dict[str, Any] = field(default_factory=dict)  # added to the run's summary


def open_trainer(model: Any, params: dict[str, np.ndarray], options: LoopOptions, placement: Placement) -> Trainable:
    """The engine that trains ``model`` (a kind's config) from ``params`` with ``options`` in this process."""
    engine = open_engine(model, params, engine=options.engine, device=options.device, optimizer=options.optimizer,
                         clip=options.clip, seed=options.seed + placement.rank,  # each process its own dropout
                         precision=options.precision, grad_accum=options.grad_accum,
                         weight_decay=options.weight_decay)
    if placement.parallel:
        engine.parallel()
    return engine


def run(out: str | Path, options: LoopOptions, setup: Setup, *,
        resume: bool = False, force: bool = False, log: Log = print, progress: bool | None = None,
        tensorboard: bool = False, backend: str | None = None, started: float | None = None) -> dict[str, Any]:
    """Train the job ``setup`` makes into ``out`` with ``options`` (resolved); its summary.
    Started by ``torchrun``, each process trains its share (``backend``: nccl or gloo).
    ``started`` (``time.perf_counter()``, default now): when the command began; ``--max-time``
    bounds all of it from then, reading the data and writing the model included."""
    started = time.perf_counter() if started is None else started
    placement = join(options.device, backend)
    try:
        return _run(Path(out), options, setup, placement, resume=resume, force=force, log=log, progress=progress,
                    tensorboard=tensorboard, started=started)
    except RuntimeError as e:  # in a run of many processes: a collective whose peer is gone
        if not placement.parallel:
            raise
        reason = re.sub(r"^\[[^\]]*\]\s*", "", str(e).splitlines()[0]).split(". ")[0]  # without gloo's source path
        raise RnnkitError(f"a process of this run stopped, so this one cannot go on ({reason}); "
                          "the last checkpoint is kept: start the run again with --resume") from None
    finally:
        leave(placement)


def _run(out: Path, options: LoopOptions, setup: Setup, placement: Placement, *, resume: bool, force: bool,
         log: Log, progress: bool | None, tensorboard: bool, started: float) -> dict[str, Any]:
    if placement.parallel:
        check_engine_can(options.engine, "distributed", "training on many processes",
                         f"not the {options.engine} engine")
    checkpoint = placement.main_first(lambda: open_run(out, resume=resume, force=force))
    if resume and not placement.is_main:
        checkpoint = open_run(out, resume=True, force=False)
    if checkpoint is not None:
        options.check_resumable(checkpoint[0]["config"])
    main = placement.is_main
    log = log if main else _quiet
    job = setup(placement, checkpoint, log)
    record = RunRecord(out, log=log, progress=progress if main else False,
                       tensorboard=tensorboard and main, unit=job.task.unit)
    if job.describe:
        record.log(job.describe)
    summary, history = fit(job.task, options, out, record, meta={"config": asdict(options), **job.meta},
                           resume=checkpoint, placement=placement, started=started)
    summary.update(job.summary, engine=options.engine, device=options.device, precision=options.precision,
                   out=str(out), processes=placement.world_size)
    if main:
        write_model_files(out, job.model_files(summary))
        record.write(history, job.task.eval_split)
    placement.barrier()  # the others end once the model is written
    return summary


def _quiet(line: str) -> None:
    """The log of a process other than the main one: the main one tells the run."""
