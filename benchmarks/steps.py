"""What several benchmarks share: the training task ``rnnkit train`` would build, and a timer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


def recipe_task(prepared: str, options: list[str], engine: str = "torch") -> tuple[Any, Any, Iterator, Any]:
    """(task, config, batches, carry) for ``rnnkit train PREPARED [options]`` on the CPU: the
    recommended recipe, then the options, read by ``rnnkit train``'s own parser."""
    from rnnkit.cli import build_parser
    from rnnkit.data.corpus import PreparedCorpus
    from rnnkit.lm.config import TrainConfig, make_config
    from rnnkit.lm.train import LMTask
    from rnnkit.models.engine import open_engine
    from rnnkit.models.schema import init_params

    given = build_parser().parse_args(["train", prepared, "--out", "-", "--engine", engine, *options])
    corpus = PreparedCorpus.open(prepared)
    cfg = make_config(given.recipe, **{f: getattr(given, f) for f in TrainConfig.__dataclass_fields__
                                       if hasattr(given, f)}).resolve(corpus)
    model = cfg.model_config(len(corpus.vocab))
    runner = open_engine(model, init_params(model, np.random.RandomState(0)), engine=cfg.engine, device="cpu",
                         optimizer=cfg.optimizer, clip=cfg.clip, precision=cfg.precision)
    task = LMTask(corpus, cfg, runner)
    return task, cfg, task.batches(np.random.default_rng(0), 0), task.initial_carry()


def mean_ms(step: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Milliseconds a call of ``step``, averaged over ``repeats`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats * 1e3
