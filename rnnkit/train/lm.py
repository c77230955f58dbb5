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
"""

from __future__ import annotations

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
from rnnkit.io.modeldir import ModelFiles, write_model_files
from rnnkit.models.engine import Engine, open_engine
from rnnkit.models.schema import init_params
from rnnkit.train.checkpoint import one_run_at_a_time, open_run
from rnnkit.train.config import TrainConfig, make_config
from rnnkit.train.loop import fit
from rnnkit.train.record import RunRecord
from rnnkit.use.evaluate import perplexity, split_loss


class LMTask:
    """A language model's training batches and evaluation, in sentence or stream mode."""

    unit = "tokens"

    def __init__(self, corpus: PreparedCorpus, cfg: TrainConfig, engine: Engine) -> None:
        self.corpus, self.cfg, self.engine = corpus, cfg, engine
        self.eval_split = "valid" if "valid" in corpus.splits else "train"
        if cfg.mode == "stream":
            self.stream = stream_tokens(corpus, "train")
            self.steps_per_epoch = stream_windows(self.stream, cfg.batch_size, cfg.bptt)
        else:
            self.steps_per_epoch = -(-corpus.num_sentences("train") // cfg.batch_size)
        if self.steps_per_epoch < 1:
            raise RnnkitError("the training split is too small for one batch; lower --batch-size")

    def batches(self, rng: np.random.Generator, start: int) -> Iterator[Batch]:
        if self.cfg.mode == "stream":
            return stream_batches(self.stream, self.cfg.batch_size, self.cfg.bptt, start)
        return sentence_batches(self.corpus, "train", self.cfg.batch_size, shuffle=True, rng=rng, start=start)

    def initial_carry(self) -> Any:
        return self.engine.initial_state(self.cfg.batch_size) if self.cfg.mode == "stream" else None

    def train_step(self, batch: Batch, lr: float, carry: Any) -> tuple[float, int, Any]:
        scale = 1.0 / (batch.tokens if self.cfg.mode == "stream" else len(batch.x))
        loss, carry = self.engine.train_step(batch.x, batch.y, batch.mask, lr, scale, carry)
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
          **options: Any) -> dict[str, Any]:
    """Train a language model and write its model directory; returns a summary of the run.
    Options are ``TrainConfig``'s, over the ``recipe``'s (the recommended one, or "seed")."""
    corpus = corpus if isinstance(corpus, PreparedCorpus) else PreparedCorpus.open(corpus)
    cfg = (config or make_config(recipe, **options)).resolve(corpus)
    out = Path(out)
    checkpoint = open_run(out, resume=resume, force=force)
    if checkpoint is not None:
        saved = {"tie": False, **checkpoint[0]["config"]}  # checkpoints from before tied embeddings existed
        changed = [k for k in TrainConfig.MODEL_KEYS if saved.get(k) != getattr(cfg, k)]
        if changed:
            raise RnnkitError(f"the checkpoint was trained with different {', '.join(changed)} "
                              f"({', '.join(f'{k}={saved.get(k)}' for k in changed)}); resume with the same options")
    model = cfg.model_config(len(corpus.vocab))
    engine = open_engine(model, init_params(model, np.random.RandomState(cfg.seed)), engine=cfg.engine,
                         device=cfg.device, optimizer=cfg.optimizer, clip=cfg.clip, seed=cfg.seed)
    task = LMTask(corpus, cfg, engine)
    record = RunRecord(out, log=log, progress=progress, tensorboard=tensorboard, unit=task.unit)
    summary, history = fit(task, cfg.schedule(), out, record, meta={"config": asdict(cfg), "corpus": str(corpus.path)},
                           resume=checkpoint, keep=cfg.keep)
    summary.update(engine=cfg.engine, device=cfg.device, mode=cfg.mode, out=str(out))
    files = ModelFiles(model, corpus.text, corpus.vocab, engine.params(), special_tokens(corpus, cfg.mode),
                       {"training": {**asdict(cfg), "corpus": str(corpus.path), **summary}})
    write_model_files(out, files)
    record.write(history, task.eval_split)
    return summary
