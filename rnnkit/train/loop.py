"""Training a language model: the seed's SGD with learning-rate halving, on a prepared corpus.

Each step takes a batch of sentences and moves the weights by ``lr`` times the batch's summed
gradient divided by the number of sentences: with ``batch_size=1`` that is exactly the seed's
``sgd_step``. Every ``evaluate_every`` epochs the loss is measured on the validation split (the
training split when there is none) and, as in the seed, the learning rate halves when it rose.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import evaluation_batches, sentence_batches
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles, save_model
from rnnkit.models.numpy.rnn import NumpyRNN
from rnnkit.models.numpy.threads import one_blas_thread


@dataclass
class TrainConfig:
    engine: str = "numpy"
    cell: str = "rnn"
    hidden: int = 100
    bptt_truncate: int = 4
    lr: float = 0.005
    epochs: float = 1.0
    batch_size: int = 1
    evaluate_every: float = 1.0  # in epochs
    max_time: float | None = None  # seconds
    seed: int = 0
    dtype: str = "float32"

    def check(self) -> None:
        if self.engine != "numpy":
            raise RnnkitError(f"engine {self.engine!r} is not available yet; use --engine numpy")
        if self.cell != "rnn":
            raise RnnkitError(f"cell {self.cell!r} is not available yet; use --cell rnn")
        for name in ("hidden", "batch_size"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"--{name.replace('_', '-')} must be at least 1")
        if self.bptt_truncate < 0 or self.lr <= 0 or self.epochs <= 0 or self.evaluate_every <= 0:
            raise RnnkitError("--bptt-truncate must be >= 0, and --lr, --epochs and --evaluate-every > 0")
        if self.dtype not in ("float32", "float64"):
            raise RnnkitError(f"--dtype must be float32 or float64 (got {self.dtype!r})")


def evaluate(model: NumpyRNN, corpus: PreparedCorpus, split: str) -> tuple[float, int]:
    """Mean loss per predicted token (nats) over a split, and the number of tokens."""
    total, tokens = 0.0, 0
    with one_blas_thread():
        for batch in evaluation_batches(corpus, split):
            total += model.loss(batch.x, batch.y, batch.mask)
            tokens += batch.tokens
    return total / max(tokens, 1), tokens


def model_config(corpus: PreparedCorpus, cfg: TrainConfig) -> dict[str, Any]:
    meta = corpus.meta
    return {
        "cell": cfg.cell, "vocab_size": len(corpus.vocab), "hidden": cfg.hidden, "layers": 1, "embedding": None,
        "bptt_truncate": cfg.bptt_truncate, "dtype": cfg.dtype, "level": meta["level"],
        "tokenizer": meta["tokenizer"], "lowercase": meta["lowercase"], "unk_token": meta["unk_token"],
        "sentence_start": corpus.vocab.tokens[corpus.start_id] if corpus.start_id is not None else None,
        "sentence_end": corpus.vocab.tokens[corpus.end_id] if corpus.end_id is not None else None,
    }


def train(corpus: PreparedCorpus | str | Path, out: str | Path, config: TrainConfig | None = None, *,
          force: bool = False, log: Callable[[str], None] = print, **options: Any) -> dict[str, Any]:
    """Train a model on a prepared corpus and write its model directory; returns a summary."""
    cfg = config or TrainConfig(**options)
    cfg.check()
    corpus = corpus if isinstance(corpus, PreparedCorpus) else PreparedCorpus.open(corpus)
    if corpus.level != "word" or corpus.start_id is None:
        raise RnnkitError("sentence-mode training needs a word-level corpus (stream mode comes with the fast engine)")
    out = Path(out)
    if out.exists() and not force:  # fail before training, not after
        raise RnnkitError(f"{out} already exists; pass --force to replace it, or choose another --out")
    eval_split = "valid" if "valid" in corpus.splits else "train"

    rng = np.random.default_rng(cfg.seed)
    model = NumpyRNN.initialize(len(corpus.vocab), cfg.hidden, bptt_truncate=cfg.bptt_truncate,
                                rng=np.random.RandomState(cfg.seed), dtype=cfg.dtype)
    sentences = corpus.num_sentences("train")
    eval_interval = max(1, round(cfg.evaluate_every * sentences))  # in sentences
    total_sentences = math.ceil(cfg.epochs * sentences)
    lr = cfg.lr
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    seen = tokens = 0
    step_seconds = 0.0  # time spent in training steps alone: what tokens/s is measured on
    train_loss_sum = train_tokens = 0.0
    next_eval = 0
    stopped = "epochs"

    def evaluation() -> None:
        nonlocal lr, train_loss_sum, train_tokens
        loss, n = evaluate(model, corpus, eval_split)
        if not math.isfinite(loss):
            raise RnnkitError(f"the {eval_split} loss is {loss} (training diverged); lower --lr")
        record = {"epoch": round(seen / sentences, 4), "sentences": seen, "tokens": tokens,
                  "seconds": round(time.perf_counter() - started, 2), "lr": lr,
                  "train_loss": train_loss_sum / train_tokens if train_tokens else None,
                  f"{eval_split}_loss": loss, f"{eval_split}_perplexity": math.exp(loss)}
        if history and loss > history[-1][f"{eval_split}_loss"]:
            lr *= 0.5
            record["lr_halved_to"] = lr
        history.append(record)
        train_loss_sum = train_tokens = 0.0
        shown = f"train loss {record['train_loss']:.4f}  " if record["train_loss"] is not None else ""
        log(f"epoch {record['epoch']:6.2f}  {shown}{eval_split} loss {loss:.4f}  perplexity {math.exp(loss):8.1f}"
            f"  lr {record['lr']:g}{'  (halved)' if 'lr_halved_to' in record else ''}"
            f"  {tokens / max(step_seconds, 1e-9):,.0f} tokens/s")

    with one_blas_thread():
        epoch = 0
        while seen < total_sentences and stopped == "epochs":
            for batch in sentence_batches(corpus, "train", cfg.batch_size, shuffle=True, rng=rng):
                if seen >= next_eval:
                    evaluation()
                    next_eval += eval_interval
                step_started = time.perf_counter()
                loss = model.sgd_update(batch.x, batch.y, batch.mask, lr / len(batch.x))
                step_seconds += time.perf_counter() - step_started
                if not math.isfinite(loss):
                    raise RnnkitError(f"the training loss became {loss} at epoch {seen / sentences:.2f}; lower --lr")
                seen += len(batch.x)
                tokens += batch.tokens
                train_loss_sum += loss
                train_tokens += batch.tokens
                if seen >= total_sentences:
                    break
                if cfg.max_time is not None and time.perf_counter() - started >= cfg.max_time:
                    stopped = "max_time"
                    break
            epoch += 1
    seconds = time.perf_counter() - started
    if history[-1]["sentences"] != seen:
        evaluation()
    last = history[-1]
    summary = {
        "train_loss": next((h["train_loss"] for h in reversed(history) if h["train_loss"] is not None), None),
        f"{eval_split}_loss": last[f"{eval_split}_loss"], f"{eval_split}_perplexity": last[f"{eval_split}_perplexity"],
        "tokens_per_second": tokens / step_seconds if step_seconds else 0.0, "seconds": round(seconds, 2),
        "sentences_seen": seen, "tokens_seen": tokens, "epochs": round(seen / sentences, 4), "stopped_by": stopped,
        "final_lr": lr, "out": str(out),
    }
    config = {**model_config(corpus, cfg), "training": {**asdict(cfg), "corpus": str(corpus.path), **summary}}
    metrics = "".join(json.dumps(h) + "\n" for h in history)
    save_model(out, ModelFiles(config, corpus.vocab, model.params, extra={"metrics.jsonl": metrics}), force=force)
    return summary
