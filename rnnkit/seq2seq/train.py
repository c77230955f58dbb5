"""Training an encoder–decoder on parallel text, with teacher forcing, by the common loop.

Batches group pairs of similar source length (little padding); the loss is the summed
cross-entropy of the target tokens. Each evaluation reports the validation loss per target token
and the character error rate of greedy outputs on a fixed sample of validation pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import (
    Seq2SeqBatch,
    grouped_batches,
    held_out_sample,
    make_seq2seq_batch,
)
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles
from rnnkit.models.config import Seq2SeqConfig
from rnnkit.models.schema import init_params
from rnnkit.seq2seq.data import Pairs, Seq2SeqIds, read_split
from rnnkit.seq2seq.metrics import character_errors
from rnnkit.seq2seq.model import Seq2Seq
from rnnkit.trainer.checkpoint import checkpoint_options, one_run_at_a_time
from rnnkit.trainer.distributed import Placement
from rnnkit.trainer.options import LoopOptions, fill_choices, make_options
from rnnkit.trainer.runner import Job, open_trainer, run

# A run bounded by time is best spent at a rate 4× the loop's that falls to 0 by its end:
# 0.0489 validation CER on the Folio in 5 minutes against 0.0540 at 0.002 held (0.0519 at 0.004
# held; at 0.012 the run diverges), and 0.0518 against 0.0525 test CER in 15 minutes
# (docs/tutorial/attention.md, "What pays in fifteen minutes"); such a run is ended by its time,
# not by a count of epochs (trainer.loop.UNBOUNDED_EPOCHS). A run bounded by epochs or steps keeps a
# steady rate, so that it can be stopped and resumed further.
STEADY_RUN = {"lr": 0.002, "decay": "none"}
BUDGET_RUN = {"lr": 0.008, "decay": "linear"}


@dataclass
class Seq2SeqTrainConfig(LoopOptions):
    """Every option of ``rnnkit seq2seq train``: the model's, then the loop's."""

    level: str = "char"
    cell: str = "lstm"  # PyTorch runs its LSTM through oneDNN on the CPU, its GRU not: about 1.4x the tokens/s
    # here, and a lower CER in the same time (docs/tutorial/attention.md, "What pays in fifteen minutes")
    hidden: int = 96
    embedding: int | None = 64
    attention: str = "general"
    attention_size: int | None = None
    input_feeding: bool = False
    encoder_layers: int = 1
    dropout: float = 0.2
    vocab_size: int | None = None  # characters: every one; words: 20,000
    max_source: int = 200
    max_target: int = 220
    eval_pairs: int = 1000  # validation pairs whose loss each evaluation computes
    decode_pairs: int = 200  # of those, decoded greedily for the CER
    lr: float | None = None  # None: 0.002, or 0.008 with a --max-time (BUDGET_RUN)
    decay: str = "auto"  # auto: linear with a --max-time, else none

    MODEL_KEYS = ("level", "cell", "hidden", "embedding", "attention", "attention_size", "input_feeding",
                  "encoder_layers", "dropout", "vocab_size",
                  "max_source", "max_target", "eval_pairs", "decode_pairs")
    EPOCHS = 10.0

    def resolve(self, resumed: dict[str, Any] | None = None) -> Seq2SeqTrainConfig:
        """A copy with every 'auto' decided and every value checked. Resuming, the rate and decay
        that the budget decides are the checkpoint's (``resumed``), whatever this session's budget."""
        if self.level not in ("char", "word"):
            raise RnnkitError(f"--level is char or word (got {self.level!r})")
        cfg = replace(self, vocab_size=(0 if self.level == "char" else 20000) if self.vocab_size is None
                      else self.vocab_size)
        fill_choices(cfg, BUDGET_RUN if cfg.max_time else STEADY_RUN, resumed)
        cfg.model_config(2)  # the model's own checks, before anything is written
        cfg.check_loop(cfg.cell)
        if cfg.vocab_size < 0 or 0 < cfg.vocab_size < 4:
            raise RnnkitError("--vocab-size must be at least 4 (or 0 to keep every token)")
        if cfg.eval_pairs < 1 or cfg.decode_pairs < 0:
            raise RnnkitError("--eval-pairs must be at least 1 and --decode-pairs at least 0")
        return cfg

    def model_config(self, vocab_size: int, length_ratio: float | None = None) -> Seq2SeqConfig:
        return Seq2SeqConfig(vocab_size, cell=self.cell, hidden=self.hidden, embedding=self.embedding,
                             attention=self.attention, attention_size=self.attention_size,
                             input_feeding=self.input_feeding, encoder_layers=self.encoder_layers,
                             dropout=self.dropout, dtype=self.dtype, max_source=self.max_source,
                             max_target=self.max_target, length_ratio=length_ratio)


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
    cfg = (config or make_options(Seq2SeqTrainConfig, **options)).resolve(checkpoint_options(out) if resume else None)

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
               backend=backend)
