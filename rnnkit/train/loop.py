"""Training a language model on a prepared corpus: the loop, its checkpoints, its outputs.

The recipe is the seed's: SGD, and every ``evaluate_every`` epochs the loss on the validation
split (the training split when there is none); when it rose, the learning rate halves (for any
optimizer, unless ``halve_lr`` is off). Two ways to feed the data:

* **sentence** mode (the seed's; the default for words): every sentence starts from a zero
  state; batches of similar-length sentences, padded and masked. A step minimises the mean over
  the batch's sentences of each sentence's summed loss, so ``batch_size=1`` is the seed's step.
* **stream** mode (the default for characters): the split as one sequence cut into ``bptt``-step
  windows, the state carried from window to window. A step minimises the mean loss per token.

Checkpoints (``MODEL/checkpoint/``: weights, optimizer state, RNG state, data position) are
written atomically at every evaluation and when SIGINT or SIGTERM arrives; ``resume=True``
continues from the last one, and on the CPU ends with the very weights an uninterrupted run
would have. The model directory's files are written when training ends.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import (Batch, evaluation_batches, sentence_batches, stream_batches,
                                  stream_evaluation_batches, stream_tokens, stream_windows)
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.fsutil import atomic_write_text
from rnnkit.io.modeldir import ModelFiles, write_model_files
from rnnkit.models.numpy import CELLS, initialize
from rnnkit.models.numpy.rnn import check_tie
from rnnkit.models.numpy.threads import one_blas_thread
from rnnkit.train.learners import OPTIMIZERS, make_learner

CHECKPOINT = "checkpoint"
_EVAL_ROWS, _EVAL_WINDOW = 10, 256  # stream-mode evaluation: contiguous parts side by side, steps per window


def perplexity(loss: float) -> float:
    """exp(loss), or infinity where that overflows."""
    return math.exp(loss) if loss < 700 else math.inf


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint."""


@dataclass
class TrainConfig:
    """Every training option. The defaults are the recipe we recommend for any corpus (a tied
    one-layer LSTM, Adam, stream mode); ``RECIPES["seed"]`` is the tutorial's own."""

    engine: str = "auto"  # torch when it is installed, else numpy
    cell: str = "lstm"  # rnn (the seed's tanh RNN), gru or lstm
    hidden: int = 256
    layers: int = 1
    embedding: int | None = None  # size; None: the seed's one-hot input (rnn) or the hidden size (gru, lstm)
    tie: bool | None = None  # the output matrix is the embedding's transpose; None: when the sizes allow (gru, lstm)
    bidirectional: bool = False  # for encoders only: refused by train
    dropout: float = 0.3  # on the embedding, between layers and on the output, while training
    optimizer: str = "adam"
    lr: float = 0.002
    batch_size: int = 32
    epochs: float = 20.0
    max_steps: int | None = None
    max_time: float | None = None  # seconds
    clip: float | None = 0.25  # largest global gradient norm
    seed: int = 0
    device: str = "auto"
    evaluate_every: float = 1.0  # epochs
    mode: str = "stream"  # auto: sentence for words, stream for characters
    bptt: int = 35  # stream mode: steps per window
    bptt_truncate: int = 4  # the numpy engine's per-output truncation (the seed's)
    dtype: str = "float32"
    halve_lr: bool = True

    # What must match for a checkpoint to be resumed with this config.
    MODEL_KEYS = ("engine", "cell", "hidden", "layers", "embedding", "tie", "dropout", "optimizer", "batch_size",
                  "mode", "bptt", "bptt_truncate", "dtype", "seed", "clip", "halve_lr", "evaluate_every")

    def resolve(self, corpus: PreparedCorpus) -> TrainConfig:
        """A copy with every 'auto' decided and every value checked."""
        cfg = TrainConfig(**{f.name: getattr(self, f.name) for f in fields(self)})
        if cfg.tie is None:
            cfg.tie = cfg.cell != "rnn" and cfg.embedding in (None, cfg.hidden)
        if cfg.engine == "auto":
            cfg.engine = "torch" if _torch_available() else "numpy"
        if cfg.engine not in ("numpy", "torch"):
            raise RnnkitError(f"unknown engine {cfg.engine!r}; use numpy or torch")
        if cfg.engine == "torch" and not _torch_available():
            raise RnnkitError("the torch engine needs PyTorch: pip install torch (or use --engine numpy)")
        if cfg.device == "auto":
            cfg.device = "cuda" if cfg.engine == "torch" and _cuda_available() else "cpu"
        if cfg.device not in ("cpu", "cuda"):
            raise RnnkitError(f"unknown device {cfg.device!r}; use cpu, cuda or auto")
        if cfg.device == "cuda" and not (cfg.engine == "torch" and _cuda_available()):
            raise RnnkitError("no CUDA device here (or the numpy engine was chosen); use --device cpu")
        if cfg.mode == "auto":
            cfg.mode = "stream" if corpus.level == "char" else "sentence"
        if cfg.mode not in ("sentence", "stream"):
            raise RnnkitError(f"unknown mode {cfg.mode!r}; use sentence or stream")
        if cfg.mode == "sentence" and corpus.start_id is None:
            raise RnnkitError("sentence mode needs a word-level corpus; use --mode stream for characters")
        if cfg.cell not in CELLS:
            raise RnnkitError(f"unknown cell {cfg.cell!r}; use {', '.join(CELLS)}")
        if cfg.bidirectional:
            raise RnnkitError("a bidirectional model reads the words it is asked to predict, so it cannot be a "
                              "left-to-right language model; --bidirectional is for encoders, not for train")
        # before any output is touched (gru and lstm embed at the hidden size unless told otherwise)
        check_tie(cfg.tie, cfg.embedding or (cfg.hidden if cfg.cell != "rnn" else None), cfg.hidden)
        if cfg.optimizer not in OPTIMIZERS:
            raise RnnkitError(f"unknown optimizer {cfg.optimizer!r}; use {', '.join(OPTIMIZERS)}")
        if cfg.dtype not in ("float32", "float64"):
            raise RnnkitError(f"--dtype must be float32 or float64 (got {cfg.dtype!r})")
        for name in ("hidden", "batch_size", "bptt", "layers"):
            if getattr(cfg, name) < 1:
                raise RnnkitError(f"--{name.replace('_', '-')} must be at least 1")
        if cfg.embedding is not None and cfg.embedding < 1:
            raise RnnkitError("--embedding must be at least 1 (leave it out for the seed's one-hot input)")
        if not 0.0 <= cfg.dropout < 1.0:
            raise RnnkitError("--dropout must be at least 0 and below 1")
        if cfg.lr <= 0 or cfg.epochs <= 0 or cfg.evaluate_every <= 0 or cfg.bptt_truncate < 0:
            raise RnnkitError("--lr, --epochs and --evaluate-every must be above 0, --bptt-truncate at least 0")
        if cfg.max_steps is not None and cfg.max_steps < 1 or cfg.clip is not None and cfg.clip <= 0:
            raise RnnkitError("--max-steps must be at least 1 and --clip above 0")
        return cfg


# The tutorial's recipe (Part 2): a tanh RNN of 100 units on one-hot words, plain SGD at 0.005,
# one sentence per step, each sentence from a zero state.
RECIPES: dict[str, dict[str, Any]] = {
    "recommended": {},
    "seed": {"cell": "rnn", "hidden": 100, "dropout": 0.0, "optimizer": "sgd", "lr": 0.005, "batch_size": 1,
             "epochs": 1.0, "clip": None, "mode": "auto"},
}


def make_config(recipe: str = "recommended", **options: Any) -> TrainConfig:
    """A TrainConfig: the recipe's settings, then ``options`` over them."""
    if recipe not in RECIPES:
        raise RnnkitError(f"unknown recipe {recipe!r}; use {' or '.join(RECIPES)}")
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"unknown training options: {', '.join(unknown)}")
    return TrainConfig(**{**RECIPES[recipe], **options})


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------------------------------- data

class _Data:
    """The training batches of one epoch, and the evaluation of a split, for the chosen mode."""

    def __init__(self, corpus: PreparedCorpus, cfg: TrainConfig) -> None:
        self.corpus, self.cfg = corpus, cfg
        if cfg.mode == "stream":
            self.stream = stream_tokens(corpus, "train")
            self.steps_per_epoch = stream_windows(self.stream, cfg.batch_size, cfg.bptt)
        else:
            self.steps_per_epoch = -(-corpus.num_sentences("train") // cfg.batch_size)
        if self.steps_per_epoch < 1:
            raise RnnkitError("the training split is too small for one batch; lower --batch-size")

    def epoch(self, rng: np.random.Generator, start: int) -> Iterator[Batch]:
        if self.cfg.mode == "stream":
            return stream_batches(self.stream, self.cfg.batch_size, self.cfg.bptt, start)
        return sentence_batches(self.corpus, "train", self.cfg.batch_size, shuffle=True, rng=rng, start=start)

    def scale(self, batch: Batch) -> float:
        return 1.0 / (batch.tokens if self.cfg.mode == "stream" else len(batch.x))

    def evaluate(self, learner, split: str) -> tuple[float, int]:
        """Mean loss per predicted token over a split, and the number of predicted tokens."""
        total, tokens = 0.0, 0
        if self.cfg.mode == "stream":
            batches = list(stream_evaluation_batches(stream_tokens(self.corpus, split), _EVAL_ROWS, _EVAL_WINDOW))
            h = learner.initial_state(len(batches[0].x)) if batches else None
            for batch in batches:
                loss, h = learner.loss(batch.x, batch.y, batch.mask, h)
                total, tokens = total + loss, tokens + batch.tokens
        else:
            for batch in evaluation_batches(self.corpus, split):
                loss, _ = learner.loss(batch.x, batch.y, batch.mask)
                total, tokens = total + loss, tokens + batch.tokens
        return total / max(tokens, 1), tokens


# ---------------------------------------------------------------------------------------- checkpoints

def _save_checkpoint(out: Path, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``out/checkpoint`` so that it is always either the previous checkpoint or the new one."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{CHECKPOINT}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / "arrays.safetensors"))
    (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
    for f in tmp.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())
    final, old = out / CHECKPOINT, out / f".{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(out: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    directory = out / CHECKPOINT
    if not directory.is_dir() and (out / f".{CHECKPOINT}.old").is_dir():
        directory = out / f".{CHECKPOINT}.old"  # a crash between the two renames
    if not (directory / "state.json").is_file():
        raise RnnkitError(f"{out} has no checkpoint to resume from; train without --resume")
    try:
        state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
        arrays = load_file(str(directory / "arrays.safetensors"))
    except Exception as e:  # a damaged checkpoint is the user's to know about, not a traceback
        raise RnnkitError(f"the checkpoint in {out} is damaged ({e}); train again without --resume") from None
    return state, arrays


# ---------------------------------------------------------------------------------------- outputs

def model_config(corpus: PreparedCorpus, cfg: TrainConfig) -> dict[str, Any]:
    meta = corpus.meta
    return {
        "cell": cfg.cell, "vocab_size": len(corpus.vocab), "hidden": cfg.hidden, "layers": cfg.layers,
        "embedding": cfg.embedding if cfg.cell == "rnn" else cfg.embedding or cfg.hidden, "tie": cfg.tie,
        "bidirectional": False, "dropout": cfg.dropout,
        "bptt_truncate": cfg.bptt_truncate, "dtype": cfg.dtype, "level": meta["level"],
        "tokenizer": meta["tokenizer"], "lowercase": meta["lowercase"], "unk_token": meta["unk_token"],
        "sentence_start": corpus.vocab.tokens[corpus.start_id] if corpus.start_id is not None else None,
        # A word stream is "… w SENTENCE_END w …": there a sentence follows SENTENCE_END, not SENTENCE_START.
        "sentence_follows": "sentence_end" if cfg.mode == "stream" and corpus.end_id is not None else "sentence_start",
        "sentence_end": corpus.vocab.tokens[corpus.end_id] if corpus.end_id is not None else None,
    }


def plot_losses(history: list[dict[str, Any]], split: str, path: Path) -> None:
    """``loss.png``: training and validation loss against tokens seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    train = [(h["tokens"], h["train_loss"]) for h in history if h.get("train_loss") is not None]
    held = [(h["tokens"], h[f"{split}_loss"]) for h in history]
    if train:
        ax.plot(*zip(*train), marker=".", label="train loss (mean since the last evaluation)")
    ax.plot(*zip(*held), marker="o", label=f"{split} loss")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


class _Progress:
    """A tqdm bar (loss, tokens/s, ETA) on a terminal; elsewhere a plain line every ``every`` seconds.
    Evaluations print their own line either way."""

    def __init__(self, total: int, initial: int, enabled: bool, log: Callable[[str], None], every: float = 30.0) -> None:
        self.bar = None
        self.total, self.step, self.log, self.every = total, initial, log, every
        self.started = self.last = time.perf_counter()
        self.initial = initial
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)

    def update(self, loss: float, tokens_per_second: float) -> None:
        self.step += 1
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_second:,.0f}", refresh=False)
            self.bar.update()
            return
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            rate = (self.step - self.initial) / (now - self.started)
            eta = (self.total - self.step) / rate if rate else math.inf
            self.log(f"step {self.step:>7,} of {self.total:,}  loss {loss:.4f}  {tokens_per_second:,.0f} tokens/s  "
                     f"about {eta / 60:.1f} min to go (at most; --max-time may stop it sooner)")

    def write(self, line: str, log: Callable[[str], None]) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            log(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------- the loop

def train(corpus: PreparedCorpus | str | Path, out: str | Path, config: TrainConfig | None = None, *,
          resume: bool = False, force: bool = False, log: Callable[[str], None] = print,
          progress: bool | None = None, tensorboard: bool = False, recipe: str = "recommended",
          **options: Any) -> dict[str, Any]:
    """Train a language model and write its model directory; returns a summary of the run.
    Options are ``TrainConfig``'s, over the ``recipe``'s (the recommended one, or "seed")."""
    corpus = corpus if isinstance(corpus, PreparedCorpus) else PreparedCorpus.open(corpus)
    cfg = (config or make_config(recipe, **options)).resolve(corpus)
    out = Path(out)
    if resume:
        state, arrays = _load_checkpoint(out)
        saved = state["config"]
        saved = {"tie": False, **saved}  # checkpoints from before tied embeddings existed
        changed = [k for k in TrainConfig.MODEL_KEYS if saved.get(k) != getattr(cfg, k)]
        if changed:
            raise RnnkitError(f"the checkpoint was trained with different {', '.join(changed)} "
                              f"({', '.join(f'{k}={saved.get(k)}' for k in changed)}); resume with the same options")
    else:
        if out.exists() and not force:
            raise RnnkitError(f"{out} already exists; pass --force to replace it, --resume to continue it, "
                              "or choose another --out")
        if out.exists():
            if not out.is_dir() or (any(out.iterdir()) and not ((out / "config.json").exists()
                                                                 or (out / CHECKPOINT).exists())):
                raise RnnkitError(f"{out} is not a model directory that rnnkit wrote; choose another --out")
            shutil.rmtree(out)
        state, arrays = None, {}
    eval_split = "valid" if "valid" in corpus.splits else "train"
    data = _Data(corpus, cfg)

    init = initialize(cfg.cell, len(corpus.vocab), cfg.hidden, bptt_truncate=cfg.bptt_truncate, layers=cfg.layers,
                      embedding=cfg.embedding, tie=cfg.tie, rng=np.random.RandomState(cfg.seed), dtype=cfg.dtype)
    learner = make_learner(cfg.engine, init.params, optimizer=cfg.optimizer, clip=cfg.clip, device=cfg.device,
                           bptt_truncate=cfg.bptt_truncate, dropout=cfg.dropout, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    position = {"step": 0, "epoch": 0, "batch": 0, "tokens": 0, "seconds": 0.0, "step_seconds": 0.0,
                "lr": cfg.lr, "epoch_rng": rng.bit_generator.state, "train_loss_sum": 0.0, "train_tokens": 0}
    history: list[dict[str, Any]] = []
    hidden = None
    if state is not None:
        position, history = state["position"], state["history"]
        learner.load_params({k.removeprefix("param."): v for k, v in arrays.items() if k.startswith("param.")})
        learner.load_state_arrays(arrays, position["step"])
        learner.load_rng_state(position.get("dropout_rng"), arrays)
        rng.bit_generator.state = position["epoch_rng"]
        if "hidden" in arrays:
            hidden = arrays["hidden"]
            if cfg.engine == "torch":
                import torch

                hidden = torch.from_numpy(hidden).to(cfg.device)
        log(f"resuming {out} at step {position['step']:,} (epoch {position['step'] / data.steps_per_epoch:.2f})")

    total_steps = math.ceil(cfg.epochs * data.steps_per_epoch)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    eval_interval = max(1, round(cfg.evaluate_every * data.steps_per_epoch))
    writer = _tensorboard(out) if tensorboard else None
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(total_steps, position["step"], show, log)
    started = time.perf_counter() - position["seconds"]
    session_started = time.perf_counter()
    stop = {"signal": None}

    def arrays_now() -> dict[str, np.ndarray]:
        result = {f"param.{k}": v for k, v in learner.numpy_params().items()}
        result.update(learner.state_arrays())
        if hidden is not None:
            result["hidden"] = hidden if isinstance(hidden, np.ndarray) else hidden.detach().cpu().numpy()
        return result

    def checkpoint() -> None:
        position["seconds"] = time.perf_counter() - started
        position["dropout_rng"] = learner.rng_state()
        _save_checkpoint(out, {"config": asdict(cfg), "position": position, "history": history,
                               "corpus": str(corpus.path)}, arrays_now())

    def evaluate(final: bool = False) -> None:
        loss, _ = data.evaluate(learner, eval_split)
        if not math.isfinite(loss):
            raise RnnkitError(f"the {eval_split} loss is {loss} at step {position['step']} (training diverged); "
                              "lower --lr or set --clip; the last good checkpoint is kept")
        train_loss = position["train_loss_sum"] / position["train_tokens"] if position["train_tokens"] else None
        record = {"step": position["step"], "epoch": round(position["step"] / data.steps_per_epoch, 4),
                  "tokens": position["tokens"], "seconds": round(time.perf_counter() - started, 2),
                  "lr": position["lr"], "train_loss": train_loss,
                  f"{eval_split}_loss": loss, f"{eval_split}_perplexity": perplexity(loss)}
        if cfg.halve_lr and history and not final and loss > history[-1][f"{eval_split}_loss"]:
            position["lr"] *= 0.5
            record["lr_halved_to"] = position["lr"]
        history.append(record)
        position["train_loss_sum"], position["train_tokens"] = 0.0, 0
        speed = position["tokens"] / position["step_seconds"] if position["step_seconds"] else 0.0
        shown = f"train loss {train_loss:.4f}  " if train_loss is not None else ""
        bar.write(f"step {record['step']:>7,}  epoch {record['epoch']:6.2f}  {shown}{eval_split} loss {loss:.4f}  "
                  f"perplexity {perplexity(loss):9.2f}  lr {record['lr']:g}"
                  f"{'  (halved)' if 'lr_halved_to' in record else ''}  {speed:,.0f} tokens/s", log)
        if writer is not None:
            writer.add_scalar(f"loss/{eval_split}", loss, position["tokens"])
            if train_loss is not None:
                writer.add_scalar("loss/train", train_loss, position["tokens"])
            writer.add_scalar("lr", record["lr"], position["tokens"])
        checkpoint()

    def on_signal(signum, frame) -> None:
        stop["signal"] = signum

    handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stopped = "epochs" if cfg.max_steps is None or total_steps < cfg.max_steps else "max_steps"
    try:
        with one_blas_thread():
            if not history:
                evaluate()
            while position["step"] < total_steps and stopped != "max_time":
                if position["batch"] == 0:  # a new epoch: its batch order comes from this RNG state
                    position["epoch_rng"] = rng.bit_generator.state
                    hidden = learner.initial_state(cfg.batch_size) if cfg.mode == "stream" else None
                for batch in data.epoch(rng, position["batch"]):
                    step_started = time.perf_counter()
                    loss, hidden = learner.step(batch.x, batch.y, batch.mask, position["lr"], data.scale(batch), hidden)
                    if not math.isfinite(loss):
                        raise RnnkitError(f"the training loss became {loss} at step {position['step'] + 1} "
                                          "(training diverged); lower --lr or set --clip; the last good checkpoint is kept")
                    position["step_seconds"] += time.perf_counter() - step_started
                    position["step"] += 1
                    position["batch"] += 1
                    position["tokens"] += batch.tokens
                    position["train_loss_sum"] += loss
                    position["train_tokens"] += batch.tokens
                    bar.update(loss / batch.tokens, position["tokens"] / position["step_seconds"])
                    if position["step"] % eval_interval == 0:
                        evaluate()
                    if stop["signal"] is not None:
                        checkpoint()
                        raise Interrupted(f"stopped by signal {stop['signal']} at step {position['step']:,}; "
                                          f"checkpoint saved: continue with the same command and --resume")
                    if position["step"] >= total_steps:
                        break
                    if cfg.max_time is not None and time.perf_counter() - session_started >= cfg.max_time:
                        stopped = "max_time"
                        break
                if position["batch"] >= data.steps_per_epoch:
                    position["epoch"] += 1
                    position["batch"] = 0
            if history[-1]["step"] != position["step"]:
                evaluate(final=True)  # no halving: there is no more training to slow down
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        bar.close()
        if writer is not None:
            writer.close()

    last = history[-1]
    seconds = time.perf_counter() - started
    summary = {
        "train_loss": next((h["train_loss"] for h in reversed(history) if h["train_loss"] is not None), None),
        f"{eval_split}_loss": last[f"{eval_split}_loss"], f"{eval_split}_perplexity": last[f"{eval_split}_perplexity"],
        "tokens_per_second": position["tokens"] / position["step_seconds"] if position["step_seconds"] else 0.0,
        "seconds": round(seconds, 2), "steps": position["step"], "tokens": position["tokens"],
        "epochs": round(position["step"] / data.steps_per_epoch, 4), "stopped_by": stopped,
        "final_lr": position["lr"], "engine": cfg.engine, "device": cfg.device, "mode": cfg.mode, "out": str(out),
    }
    config = {**model_config(corpus, cfg), "training": {**asdict(cfg), "corpus": str(corpus.path), **summary}}
    write_model_files(out, ModelFiles(config, corpus.vocab, learner.numpy_params()))
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
    plot_losses(history, eval_split, out / "loss.png")
    return summary


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RnnkitError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))


def evaluate_model(model_dir: str | Path, corpus: PreparedCorpus | str | Path, *, split: str = "valid",
                   engine: str = "auto", mode: str = "auto", device: str = "auto") -> dict[str, Any]:
    """Mean loss per predicted token, perplexity and token count of a trained model on a split."""
    from rnnkit.io.modeldir import load_model

    files = load_model(model_dir)
    corpus = corpus if isinstance(corpus, PreparedCorpus) else PreparedCorpus.open(corpus)
    if files.vocab.tokens != corpus.vocab.tokens:
        raise RnnkitError(f"{model_dir} was trained with another vocabulary than {corpus.path}'s; "
                          "evaluate on a corpus prepared the same way")
    corpus._check_split(split)
    if mode == "auto":  # as the model was trained
        mode = files.config.get("training", {}).get("mode", "auto")
    cfg = TrainConfig(engine=engine, mode=mode, device=device, cell=files.config["cell"], hidden=files.config["hidden"],
                      layers=files.config.get("layers", 1), embedding=files.config.get("embedding"),
                      tie=files.config.get("tie", False),
                      dtype=files.config["dtype"]).resolve(corpus)
    learner = make_learner(cfg.engine, {k: v.copy() for k, v in files.params.items()}, optimizer="sgd", clip=None,
                           device=cfg.device, bptt_truncate=files.config.get("bptt_truncate", 4))
    with one_blas_thread():
        loss, tokens = _Data(corpus, cfg).evaluate(learner, split)
    return {"split": split, "loss": loss, "perplexity": perplexity(loss), "tokens": tokens, "engine": cfg.engine,
            "mode": cfg.mode}
