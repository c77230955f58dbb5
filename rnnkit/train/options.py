"""The options of the common loop, shared by the trainers built on it (``rnnkit rank train``,
``rnnkit seq2seq train``): each kind's options extend ``LoopOptions`` with its model's."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

from rnnkit.errors import RnnkitError
from rnnkit.models.engine import resolve_engine
from rnnkit.models.optim import check_optimizer
from rnnkit.train.loop import Schedule

Options = TypeVar("Options", bound="LoopOptions")


@dataclass
class LoopOptions:
    optimizer: str = "adam"
    lr: float = 0.002
    batch_size: int = 64
    epochs: float = 4.0
    max_steps: int | None = None
    max_time: float | None = None  # seconds of this session
    clip: float | None = 5.0
    seed: int = 0
    engine: str = "auto"
    device: str = "auto"
    evaluate_every: float = 0.5  # epochs
    halve_lr: bool = True  # when the validation loss rises
    decay: str = "none"  # or linear, cosine: the rate falls to 0 over the budget (epochs, steps or max_time)
    dtype: str = "float32"
    keep: str = "best"  # the weights of the lowest validation loss, or the "last" ones
    patience: int | None = None  # stop after this many evaluations without a new best

    # What must match for a checkpoint to be resumed (a kind adds its model's keys).
    LOOP_KEYS = ("optimizer", "batch_size", "clip", "seed", "engine", "evaluate_every", "halve_lr", "decay", "dtype")

    def check_loop(self, cell: str | None) -> None:
        """Decide 'auto' engine and device for ``cell`` (None: no engine, a fitted baseline) and
        check the loop's values, before anything is written."""
        if cell is not None:
            self.engine, self.device = resolve_engine(self.engine, self.device, cell)
            check_optimizer(self.optimizer)
        if self.batch_size < 2:
            raise RnnkitError("--batch-size must be at least 2")
        if self.clip is not None and self.clip <= 0:
            raise RnnkitError("--clip must be above 0")
        self.schedule()  # its own checks: rate, epochs, steps, patience

    def schedule(self) -> Schedule:
        return Schedule(self.lr, self.epochs, self.max_steps, self.max_time, self.evaluate_every, self.halve_lr,
                        self.seed, self.patience, self.decay)

    def check_resumable(self, saved: dict[str, Any], model_keys: tuple[str, ...]) -> None:
        """A checkpoint's options (``saved``) agree with these on what the run depends on."""
        check_resumable(saved, self, (*model_keys, *self.LOOP_KEYS))


# What a checkpoint from before an option existed was trained with.
BEFORE_THE_OPTION = {"tie": False, "cutoffs": [], "decay": "none"}


def check_resumable(saved: dict[str, Any], options: Any, keys: tuple[str, ...]) -> None:
    """A checkpoint's options (``saved``) agree with ``options`` on ``keys``, what the run depends on."""
    saved = {**BEFORE_THE_OPTION, **saved}
    changed = [k for k in keys if saved.get(k) != getattr(options, k)]
    if changed:
        raise RnnkitError(f"the checkpoint was trained with different {', '.join(changed)} "
                          f"({', '.join(f'{k}={saved.get(k)}' for k in changed)}); resume with the same options")


def make_options(cls: type[Options], **options: Any) -> Options:
    """``cls(**options)``, naming the options it does not know."""
    unknown = sorted(set(options) - {f.name for f in fields(cls)})
    if unknown:
        raise TypeError(f"unknown options: {', '.join(unknown)}")
    return cls(**options)
