"""Training a language model on a prepared corpus: its task for the loop, and ``train``.

Two ways to feed the data:

* **sentence** mode (the seed's; the default for words with ``--recipe seed``): every sentence
  starts from a zero state; batches of similar-length sentences, padded and masked. A step
  minimises the mean over the batch's sentences of each sentence's summed loss, so
  ``batch_size=1`` is the seed's step.
* **stream** mode (the recommended recipe's): the split as one sequence cut into ``bptt``-step
  windows, the state carried from window to window. A step minimises the mean loss per token.

Checkpoints resume exactly: on the CPU, an interrupted and resumed run ends with the very weights
an uninterrupted one does.

Under ``torchrun`` every process trains on its share of each batch (stream mode: its contiguous
rows of the stream; sentence mode: its part of each length-sorted batch), and
DistributedDataParallel averages the gradients; ``batch_size`` stays the whole step's. The
checkpoints do not depend on the number of processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import (
    Batch,
    sentence_batches,
    stream_batches,
    stream_tokens,
    stream_windows,
)
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles
from rnnkit.lm.config import TrainConfig, make_config
from rnnkit.lm.engine import Engine
from rnnkit.lm.evaluate import perplexity, split_loss
from rnnkit.models.schema import init_params
from rnnkit.trainer.checkpoint import checkpoint_options, one_run_at_a_time
from rnnkit.trainer.distributed import Placement
from rnnkit.trainer.runner import Job, open_trainer, run


class LMTask:
    """A language model's training batches and evaluation, in sentence or stream mode."""

    unit = "tokens"

    def __init__(self, corpus: PreparedCorpus, cfg: TrainConfig, engine: Engine,
                 placement: Placement = Placement()) -> None:
        self.corpus, self.cfg, self.engine, self.placement = corpus, cfg, engine, placement
        self.eval_split = "valid" if "valid" in corpus.splits else "train"
        self.rows = placement.share(cfg.batch_size)  # stream mode: this process's rows of the stream
        if cfg.mode == "stream":
            self.stream = stream_tokens(corpus, "train")
            self.steps_per_epoch = stream_windows(self.stream, cfg.batch_size, cfg.bptt)
        else:
            self.steps_per_epoch = -(-corpus.num_sentences("train") // cfg.batch_size)
        if self.steps_per_epoch < 1:
            raise RnnkitError("the training split is too small for one batch; lower --batch-size")
        if cfg.batch_size < placement.world_size * cfg.grad_accum:
            raise RnnkitError(f"--batch-size {cfg.batch_size} (the whole step's) is too small for {placement.world_size} "
                              f"process(es) of --grad-accum {cfg.grad_accum} micro-batches each; raise it to at least "
                              f"{placement.world_size * cfg.grad_accum}")

    def batches(self, rng: np.random.Generator, start: int) -> Iterator[Batch]:
        if self.cfg.mode == "stream":
            return stream_batches(self.stream, self.cfg.batch_size, self.cfg.bptt, start, rows=self.rows)
        share = self.placement.share if self.placement.parallel else None
        return sentence_batches(self.corpus, "train", self.cfg.batch_size, shuffle=True, rng=rng, start=start,
                                share=share)

    def initial_carry(self) -> Any:
        return self.engine.initial_state(self.rows.stop - self.rows.start) if self.cfg.mode == "stream" else None

    def train_step(self, batch: Batch, lr: float, carry: Any) -> tuple[float, int, Any]:
        # The step's loss is the mean per token (stream) or per sentence over the whole step's
        # rows; DistributedDataParallel averages the processes' gradients, hence world_size.
        per = batch.step_rows * (batch.x.shape[1] if self.cfg.mode == "stream" else 1)
        loss, carry = self.engine.train_step(batch, lr, self.placement.world_size / per, carry)
        return loss, batch.tokens, carry

    def evaluate(self) -> dict[str, float]:
        loss, _ = split_loss(self.engine, self.corpus, self.eval_split, self.cfg.mode)
        return {"loss": loss, "perplexity": perplexity(loss)}


def special_tokens(corpus: PreparedCorpus, mode: str) -> dict[str, Any]:
    """The markers a model of this corpus reads and writes sentences with."""
    name = lambda i: corpus.vocab.tokens[i] if i is not None else None  # noqa: E731
    # A word stream is "… w SENTENCE_END w …": there a sentence follows SENTENCE_END, not SENTENCE_START.
    follows = "sentence_end" if mode == "stream" and corpus.end_id is not None else "sentence_start"
    return {"sentence_start": name(corpus.start_id), "sentence_follows": follows, "sentence_end": name(corpus.end_id)}


@one_run_at_a_time
def train(corpus: PreparedCorpus | str | Path, out: str | Path, config: TrainConfig | None = None, *,
          resume: bool = False, force: bool = False, log: Callable[[str], None] = print,
          progress: bool | None = None, tensorboard: bool = False, recipe: str = "recommended",
          backend: str | None = None, **options: Any) -> dict[str, Any]:
    """Train a language model and write its model directory; returns a summary of the run.
    Options are ``TrainConfig``'s, over the ``recipe``'s (the recommended one, or "seed").
    Started by ``torchrun``, each process trains its share (``backend``: nccl or gloo)."""
    started = time.perf_counter()  # --max-time bounds the whole command
    given = config or make_config(recipe, **options)  # every option checked before the data is read
    corpus = corpus if isinstance(corpus, PreparedCorpus) else PreparedCorpus.open(corpus)
    cfg = given.resolve(corpus, checkpoint_options(out) if resume else None)

    def setup(placement: Placement, checkpoint: Any, log: Callable[[str], None]) -> Job:
        model = cfg.model_config(len(corpus.vocab))
        engine = open_trainer(model, init_params(model, np.random.RandomState(cfg.seed)), cfg, placement)

        def files(summary: dict[str, Any]) -> ModelFiles:
            training = {**asdict(cfg), "corpus": str(corpus.path), **summary}
            return ModelFiles(model, corpus.text, corpus.vocab, engine.params(), special_tokens(corpus, cfg.mode),
                              {"training": training})

        return Job(LMTask(corpus, cfg, engine, placement), files, cfg.describe(len(corpus.vocab)),
                   meta={"corpus": str(corpus.path)}, summary={"mode": cfg.mode})

    return run(out, cfg, setup, resume=resume, force=force, log=log, progress=progress, tensorboard=tensorboard,
               backend=backend, started=started)
