"""What a training run tells while it runs and leaves behind: the loop's callback.

Progress (a tqdm bar on a terminal; elsewhere a plain line every 30 s with an ETA), one line per
evaluation, TensorBoard scalars on request, and at the end ``metrics.jsonl`` (one object per
evaluation) and ``loss.png`` (training and held-out loss against what was seen).
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
    """A tqdm bar (loss, units/s, ETA) when ``enabled``; else a plain line every ``every`` seconds."""

    def __init__(self, total: int, initial: int, enabled: bool, log: Callable[[str], None], unit: str,
                 every: float = 30.0) -> None:
        self.bar = None
        self.total, self.step, self.initial, self.log, self.unit, self.every = total, initial, initial, log, unit, every
        self.started = self.last = time.perf_counter()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)

    def update(self, loss: float, speed: float) -> None:
        self.step += 1
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", **{f"{self.unit[:3]}_s": f"{speed:,.0f}"}, refresh=False)
            self.bar.update()
            return
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            rate = (self.step - self.initial) / (now - self.started)
            eta = (self.total - self.step) / rate if rate else math.inf
            self.log(f"step {self.step:>7,} of {self.total:,}  loss {loss:.4f}  {speed:,.0f} {self.unit}/s  "
                     f"about {eta / 60:.1f} min to go (at most; --max-time may stop it sooner)")

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

    def start(self, total_steps: int, step: int) -> None:
        self.progress = Progress(total_steps, step, self.show, self.log, self.unit)

    def step(self, loss_per_unit: float, speed: float) -> None:
        self.progress.update(loss_per_unit, speed)

    def evaluation(self, record: dict[str, Any], split: str, speed: float) -> None:
        """One line: step, epoch, training loss, held-out loss and metrics, rate, speed."""
        train = f"train loss {record['train_loss']:.4f}  " if record["train_loss"] is not None else ""
        metrics = "".join(f"  {k.removeprefix(split + '_')} {v:9.2f}" for k, v in record.items()
                          if k.startswith(split + "_") and k != f"{split}_loss")
        halved = "  (halved)" if "lr_halved_to" in record else ""
        self.progress.write(f"step {record['step']:>7,}  epoch {record['epoch']:6.2f}  {train}{split} loss "
                            f"{record[f'{split}_loss']:.4f}{metrics}  lr {record['lr']:g}{halved}  "
                            f"{speed:,.0f} {self.unit}/s")
        if self.writer is not None:
            seen = record[self.unit]
            self.writer.add_scalar(f"loss/{split}", record[f"{split}_loss"], seen)
            if record["train_loss"] is not None:
                self.writer.add_scalar("loss/train", record["train_loss"], seen)
            self.writer.add_scalar("lr", record["lr"], seen)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.writer is not None:
            self.writer.close()

    def write(self, history: list[dict[str, Any]], split: str) -> None:
        """``metrics.jsonl`` and ``loss.png`` in the output directory."""
        atomic_write_text(self.out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
        plot_losses(history, split, self.out / "loss.png", self.unit)


def plot_losses(history: list[dict[str, Any]], split: str, path: Path, unit: str = "tokens") -> None:
    """Training and held-out loss against the units seen."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    train = [(h[unit], h["train_loss"]) for h in history if h.get("train_loss") is not None]
    held = [(h[unit], h[f"{split}_loss"]) for h in history]
    if train:
        ax.plot(*zip(*train), marker=".", label="train loss (mean since the last evaluation)")
    ax.plot(*zip(*held), marker="o", label=f"{split} loss")
    ax.set_xlabel(f"{unit} seen")
    ax.set_ylabel(f"loss (nats per {unit.rstrip('s')})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RnnkitError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))
