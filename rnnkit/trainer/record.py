"""What a training run tells while it runs and leaves behind: the loop's callback.

Progress (a tqdm bar on a terminal; elsewhere a plain line every 30 s with an ETA), one line per
evaluation, TensorBoard scalars on request, and at the end ``metrics.jsonl`` (one object per
training point or evaluation) and ``loss.png`` (training and held-out loss against what was seen).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.figures import pyplot, save_figure
from rnnkit.fsutil import atomic_write_text


class Progress:
    """A tqdm bar (loss, units/s, ETA) when ``enabled``; else a plain line every ``every`` seconds.
    ``max_time``: the seconds this session may run, which end it before ``total`` steps if sooner;
    ``total`` None: the time alone ends it."""

    def __init__(self, total: int | None, initial: int, enabled: bool, log: Callable[[str], None], unit: str,
                 every: float = 30.0, max_time: float | None = None) -> None:
        self.bar = None
        self.total, self.step, self.initial, self.log, self.unit, self.every = total, initial, initial, log, unit, every
        self.max_time = max_time
        self.started = self.last = time.perf_counter()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)

    def time_left(self, now: float) -> float:
        return math.inf if self.max_time is None else max(0.0, self.max_time - (now - self.started))

    def update(self, loss: float, speed: float) -> None:
        self.step += 1
        now = time.perf_counter()
        if self.bar is not None:  # its ETA counts steps; the time limit is shown beside it
            left = {} if self.max_time is None else {"time_left": f"{self.time_left(now) / 60:.1f}m"}
            self.bar.set_postfix(loss=f"{loss:.3f}", **{f"{self.unit[:3]}_s": f"{speed:,.0f}"}, **left, refresh=False)
            self.bar.update()
            return
        if now - self.last >= self.every:
            self.last = now
            rate = (self.step - self.initial) / (now - self.started)
            steps_left = math.inf if self.total is None else self.total - self.step
            eta = min(steps_left / rate if rate else math.inf, self.time_left(now))
            of_total = "" if self.total is None else f" of {self.total:,}"
            self.log(f"step {self.step:>7,}{of_total}  loss {loss:.4f}  {speed:,.0f} {self.unit}/s  "
                     f"about {eta / 60:.1f} min to go")

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            self.log(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class RunRecord:
    """The loop's callback: ``start``, ``step``, ``evaluation``, ``close``, then ``write`` the files.
    ``unit`` is what a step counts (tokens for a language model)."""

    def __init__(self, out: Path, *, log: Callable[[str], None] = print, progress: bool | None = None,
                 tensorboard: bool = False, unit: str = "tokens") -> None:
        self.out, self.log, self.unit = Path(out), log, unit
        self.show = sys.stderr.isatty() if progress is None else progress
        self.writer = _tensorboard(self.out) if tensorboard else None
        self.progress: Progress | None = None

    def start(self, total_steps: int | None, step: int, max_time: float | None = None) -> None:
        self.progress = Progress(total_steps, step, self.show, self.log, self.unit, max_time=max_time)

    def step(self, loss_per_unit: float, speed: float) -> None:
        self.progress.update(loss_per_unit, speed)

    def point(self, entry: dict[str, Any]) -> None:
        """A training point: TensorBoard's scalars (the progress bar shows it already)."""
        if self.writer is not None:
            seen = entry[self.unit]
            self.writer.add_scalar("loss/train", entry["train_loss"], seen)
            self.writer.add_scalar("lr", entry["lr"], seen)
            self.writer.add_scalar(f"{self.unit}_per_second", entry[f"{self.unit}_per_second"], seen)

    def evaluation(self, entry: dict[str, Any], split: str, speed: float, train_loss: float | None) -> None:
        """One line: step, epoch, training loss, held-out loss and metrics, rate, speed."""
        train = f"train loss {train_loss:.4f}  " if train_loss is not None else ""
        metrics = "".join(f"  {k.removeprefix(split + '_')} {v:9.2f}" for k, v in entry.items()
                          if k.startswith(split + "_") and k != f"{split}_loss")
        halved = "  (halved)" if "lr_halved_to" in entry else ""
        self.progress.write(f"step {entry['step']:>7,}  epoch {entry['epoch']:6.2f}  {train}{split} loss "
                            f"{entry[f'{split}_loss']:.4f}{metrics}  lr {entry['lr']:g}{halved}  "
                            f"{speed:,.0f} {self.unit}/s")
        if self.writer is not None:
            self.writer.add_scalar(f"loss/{split}", entry[f"{split}_loss"], entry[self.unit])

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.writer is not None:
            self.writer.close()

    def write(self, log: list[dict[str, Any]], split: str) -> None:
        """``metrics.jsonl`` (the run's record, one object per line) and ``loss.png`` in the output directory."""
        atomic_write_text(self.out / "metrics.jsonl", "".join(json.dumps(e) + "\n" for e in log))
        plot_losses(log, split, self.out / "loss.png", self.unit)


def plot_losses(log: list[dict[str, Any]], split: str, path: Path, unit: str = "tokens", *,
                log_scale: bool = False) -> None:
    """The run at a glance: training loss (each point the mean since the one before) and held-out
    loss against the units seen, epochs along the top, the learning rate on the right."""
    plt = pyplot()
    from matplotlib.ticker import EngFormatter, FormatStrFormatter

    fig, ax = plt.subplots(figsize=(8, 4.5))
    train = [(e[unit], e["train_loss"]) for e in log if "train_loss" in e and f"{split}_loss" not in e]
    held = [(e[unit], e[f"{split}_loss"]) for e in log if f"{split}_loss" in e]
    if train:
        ax.plot(*zip(*train), color="tab:blue", linewidth=1.2, label="train loss")
    ax.plot(*zip(*held), color="tab:orange", marker="o", label=f"{split} loss")
    ax.set_xlabel(f"{unit} seen")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylabel(f"loss (nats per {unit.rstrip('s')})")
    if log_scale:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.grid(alpha=0.3)
    rates = [(e[unit], e["lr"]) for e in log]
    lr_axis = ax.twinx()
    lr_axis.step(*zip(*rates), where="post", color="tab:gray", alpha=0.6, linewidth=1, label="learning rate")
    lr_axis.set_ylabel("learning rate", color="tab:gray")
    lr_axis.set_ylim(0, max(r for _, r in rates) * 1.1)
    per_epoch = _units_per_epoch(log, unit)
    if per_epoch:
        top = ax.secondary_xaxis("top", functions=(lambda x: x / per_epoch, lambda e: e * per_epoch))
        top.set_xlabel("epoch")
    lines = ax.get_legend_handles_labels()[0] + lr_axis.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)


def plot_run(model: str | Path, out: str | Path | None = None, *, log_scale: bool = False) -> Path:
    """Draw a model directory's ``metrics.jsonl`` again (to ``out``, default its ``loss.png``),
    on a log scale if asked; returns the figure's path."""
    model = Path(model)
    path = model / "metrics.jsonl"
    if not path.is_file():
        raise RnnkitError(f"{model} has no metrics.jsonl; give the directory a training run wrote")
    try:
        log = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        split = next(k.removesuffix("_loss") for e in log for k in e if k.endswith("_loss") and k != "train_loss")
        unit = next(k for k in ("tokens", "pairs") if k in log[0])
    except (ValueError, StopIteration, IndexError, AttributeError, TypeError, UnicodeDecodeError):
        raise RnnkitError(f"{path} is not a training record rnnkit wrote") from None
    target = Path(out) if out is not None else model / "loss.png"
    plot_losses(log, split, target, unit, log_scale=log_scale)
    return target


def _units_per_epoch(log: list[dict[str, Any]], unit: str) -> float | None:
    last = next((e for e in reversed(log) if e["epoch"] > 0), None)
    return last[unit] / last["epoch"] if last is not None else None


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RnnkitError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))
