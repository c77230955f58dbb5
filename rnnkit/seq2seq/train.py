"""Training an encoder–decoder on parallel text, with teacher forcing, by the common loop.

Batches group pairs of similar source length (little padding); the loss is the summed
cross-entropy of the target tokens. Each evaluation reports the validation loss per target token
and the character error rate of greedy outputs on a fixed sample of validation pairs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import grouped_batches, held_out_sample
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles
from rnnkit.models.schema import init_params
from rnnkit.seq2seq.config import Seq2SeqTrainConfig
from rnnkit.seq2seq.data import (
    Pairs,
    Seq2SeqBatch,
    Seq2SeqIds,
    make_seq2seq_batch,
    read_split,
)
from rnnkit.seq2seq.metrics import character_errors
from rnnkit.seq2seq.model import Seq2Seq
from rnnkit.trainer.checkpoint import checkpoint_options, one_run_at_a_time
from rnnkit.trainer.distributed import Placement
from rnnkit.trainer.runner import Job, open_trainer, run


class Seq2SeqTask:
    """Teacher-forced batches and a validation sample, for the loop."""

    unit = "tokens"
    eval_split = "valid"

    def __init__(self, train: tuple[list[np.ndarray], list[np.ndarray]], valid: Pairs, model: Seq2Seq,
                 cfg: Seq2SeqTrainConfig, placement: Placement = Placement()) -> None:
        self.sources, self.targets = train
        self.model, self.engine, self.cfg, self.placement = model, model.engine, cfg, placement
        self.lengths = np.array([len(s) for s in self.sources])
        self.steps_per_epoch = math.ceil(len(self.sources) / cfg.batch_size)
        self.valid = valid.take(held_out_sample(len(valid), cfg.eval_pairs, cfg.seed))
        self.valid_batches = [self._batch(model.ids.encode(self.valid.sources[a:a + cfg.batch_size]),
                                          model.ids.encode(self.valid.targets[a:a + cfg.batch_size]))
                              for a in range(0, len(self.valid), cfg.batch_size)]

    def _batch(self, sources: list[np.ndarray], targets: list[np.ndarray]) -> Seq2SeqBatch:
        c = self.model.config
        return make_seq2seq_batch([s[: c.max_source] for s in sources], [t[: c.max_target] for t in targets],
                                  self.model.ids.start_id, self.model.ids.end_id)

    def batches(self, rng: np.random.Generator, start: int) -> Iterator[Seq2SeqBatch]:
        for chosen in grouped_batches(self.lengths, self.cfg.batch_size, rng)[start:]:
            yield self._batch([self.sources[i] for i in chosen], [self.targets[i] for i in chosen])

    def initial_carry(self) -> None:
        return None

    def train_step(self, batch: Seq2SeqBatch, lr: float, carry: None) -> tuple[float, int, None]:
        # The mean over the whole step's target tokens; DistributedDataParallel averages the processes' gradients.
        mine = self.placement.own(batch)
        loss, _ = self.engine.train_step(mine, lr, self.placement.world_size / int(batch.y_mask.sum()))
        return loss, int(mine.y_mask.sum()), None

    def evaluate(self) -> dict[str, float]:
        """``loss`` per target token of the validation sample, and the CER of greedy outputs."""
        loss = sum(self.engine.loss(b)[0] for b in self.valid_batches)
        tokens = sum(int(b.y_mask.sum()) for b in self.valid_batches)
        metrics = {"loss": loss / tokens}
        if self.cfg.decode_pairs:
            sample = self.valid.take(range(min(self.cfg.decode_pairs, len(self.valid))))
            outputs = self.model.translate(sample.sources)
            metrics["cer"] = float(character_errors(outputs, sample.targets).sum() / sum(map(len, sample.targets)))
        return metrics


def _training_rows(ids: Seq2SeqIds, pairs: Pairs, cfg: Seq2SeqTrainConfig,
                   log: Callable[[str], None]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Id rows of the training pairs; pairs beyond the length limits are left out (and counted)."""
    sources, targets = ids.encode(pairs.sources), ids.encode(pairs.targets)
    kept = [i for i, (s, t) in enumerate(zip(sources, targets)) if len(s) <= cfg.max_source and len(t) <= cfg.max_target]
    if len(kept) < len(sources):
        log(f"left out {len(sources) - len(kept):,} training pairs longer than --max-source {cfg.max_source} "
            f"or --max-target {cfg.max_target}")
    if not kept:
        raise RnnkitError("no training pair fits the length limits; raise --max-source/--max-target")
    return [sources[i] for i in kept], [targets[i] for i in kept]


def length_ratio(sources: list[np.ndarray], targets: list[np.ndarray]) -> float:
    """Target over source length that 99.9% of the training pairs stay within, rounded up to 0.1."""
    ratios = np.array([len(t) / max(len(s), 1) for s, t in zip(sources, targets)])
    return math.ceil(float(np.quantile(ratios, 0.999)) * 10) / 10


@one_run_at_a_time
def train_seq2seq(data: str | Path, out: str | Path, config: Seq2SeqTrainConfig | None = None, *,
                  resume: bool = False, force: bool = False, log: Callable[[str], None] = print,
                  progress: bool | None = None, tensorboard: bool = False, backend: str | None = None,
                  **options: Any) -> dict[str, Any]:
    """Train an encoder–decoder on ``data`` (a pairs directory or TSV file); write its model
    directory and return a summary of the run. Started by ``torchrun``, each process trains its
    share of every batch."""
    started = time.perf_counter()  # --max-time bounds the whole command
    cfg = (config or Seq2SeqTrainConfig.make(**options)).resolve(checkpoint_options(out) if resume else None)

    def setup(placement: Placement, checkpoint: Any, log: Callable[[str], None]) -> Job:
        train, valid = read_split(data, "train", cfg.seed), read_split(data, "valid", cfg.seed)
        ids = Seq2SeqIds.build(cfg.level, train, cfg.vocab_size)
        log(f"read {len(train):,} training and {len(valid):,} validation pairs; vocabulary {len(ids.vocab):,} "
            f"{'characters' if cfg.level == 'char' else 'words'}")
        rows = _training_rows(ids, train, cfg, log)
        model = cfg.model_config(len(ids.vocab), length_ratio(*rows))
        engine = open_trainer(model, init_params(model, np.random.RandomState(cfg.seed)), cfg, placement)

        def files(summary: dict[str, Any]) -> ModelFiles:
            training = {**asdict(cfg), "data": str(data), **summary}
            return ModelFiles(model, ids.text, ids.vocab, engine.params(), info={"training": training})

        return Job(Seq2SeqTask(rows, valid, Seq2Seq(model, ids, engine), cfg, placement), files,
                   meta={"data": str(data)}, summary={"attention": cfg.attention})

    return run(out, cfg, setup, resume=resume, force=force, log=log, progress=progress, tensorboard=tensorboard,
               backend=backend, started=started)
