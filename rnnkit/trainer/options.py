"""The trainer's options, the same for every kind: each kind's options extend ``LoopOptions``
with its model's (and may change a default)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from rnnkit.errors import RnnkitError
from rnnkit.models.engine import cpu_has_bf16, resolve_engine
from rnnkit.models.optim import check_optimizer
from rnnkit.trainer.loop import UNBOUNDED_EPOCHS, Schedule

Options = TypeVar("Options", bound="LoopOptions")


@dataclass
class LoopOptions:
    optimizer: str = "adam"
    lr: float = 0.002
    batch_size: int = 64
    epochs: float | None = None  # None: EPOCHS, or UNBOUNDED_EPOCHS with a --max-time or --max-steps alone
    max_steps: int | None = None
    max_time: float | None = None  # seconds of this session
    clip: float | None = 5.0
    weight_decay: float | None = 0.0  # decoupled (AdamW's), on the weight matrices; None: the kind's choice
    seed: int = 0
    engine: str = "auto"
    device: str = "auto"
    evaluate_every: float = 0.5  # epochs
    halve_lr: bool = True  # when the validation loss rises
    decay: str = "none"  # or linear, cosine: the rate falls to 0 over the budget (epochs, steps or max_time);
    # auto: the kind's choice (none, unless it measured better)
    dtype: str = "float32"
    keep: str = "best"  # the weights of the lowest validation loss, or the "last" ones
    patience: int | None = None  # stop after this many evaluations without a new best
    grad_accum: int = 1  # micro-batches a step's gradients are gathered over (torch engine)
    precision: str = "fp32"  # or bf16 (torch engine), fp16 (torch on CUDA): mixed precision; auto: bf16 on a
    # CPU that computes it natively, else fp32

    # What must match for a checkpoint to be resumed (a kind adds its model's keys).
    LOOP_KEYS = ("optimizer", "batch_size", "clip", "seed", "engine", "evaluate_every", "halve_lr", "decay", "dtype",
                 "weight_decay")
    MODEL_KEYS: ClassVar[tuple[str, ...]] = ()  # each kind's
    MIN_BATCH_SIZE: ClassVar[int] = 2
    EPOCHS: ClassVar[float] = 4.0  # each kind's: the bound of a run given no other

    def check_loop(self, cell: str | None) -> None:
        """Decide 'auto' engine, device and precision for ``cell`` (None: no engine, a fitted
        baseline) and check the loop's values, before anything is written."""
        if cell is not None:
            self.engine, self.device = resolve_engine(self.engine, self.device, cell)
            check_optimizer(self.optimizer)
        if self.batch_size < self.MIN_BATCH_SIZE:
            raise RnnkitError(f"--batch-size must be at least {self.MIN_BATCH_SIZE}")
        if self.clip is not None and self.clip <= 0:
            raise RnnkitError("--clip must be above 0")
        if self.decay == "auto":
            self.decay = "none"
        if self.grad_accum < 1:
            raise RnnkitError("--grad-accum must be at least 1")
        if self.grad_accum > 1 and self.engine != "torch":
            raise RnnkitError("--grad-accum needs the torch engine (the numpy engine takes a whole batch at once)")
        self.check_precision()
        if self.epochs is None:
            self.epochs = UNBOUNDED_EPOCHS if self.max_time or self.max_steps else self.EPOCHS
        self.schedule()  # its own checks: rate, epochs, steps, patience
        if self.weight_decay is None:
            self.weight_decay = 0.0
        if not 0 <= self.weight_decay * self.lr < 1:
            raise RnnkitError(f"--weight-decay must be at least 0 and below 1/--lr ({1 / self.lr:g}): each step "
                              "shrinks the weights by 1 - lr × weight decay")

    def check_precision(self) -> None:
        """Decide "auto" (bf16 where the CPU has it in hardware: the same loss per step at about 1.5×
        the tokens/s, benchmarks/precision.py; float32 elsewhere, CUDA included) and check the choice."""
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise RnnkitError(f"unknown --precision {self.precision!r}; use auto, fp32, bf16 or fp16")
        if self.precision == "auto":
            native = self.engine == "torch" and self.device == "cpu" and self.dtype == "float32" and cpu_has_bf16()
            self.precision = "bf16" if native else "fp32"
        if self.precision != "fp32" and self.engine != "torch":
            raise RnnkitError(f"--precision {self.precision} is for the torch engine; the numpy engine computes in "
                              "its --dtype")
        if self.precision == "fp16" and self.device != "cuda":
            raise RnnkitError("--precision fp16 is for CUDA (PyTorch's CPU LSTM has no fp16); on the CPU use bf16 "
                              "or fp32")
        if self.precision != "fp32" and self.dtype != "float32":
            raise RnnkitError("mixed precision keeps float32 weights; leave --dtype at float32")

    def schedule(self) -> Schedule:
        return Schedule(self.lr, self.epochs, self.max_steps, self.max_time, self.evaluate_every, self.halve_lr,
                        self.seed, self.patience, self.decay)

    def check_resumable(self, saved: dict[str, Any]) -> None:
        """A checkpoint's options (``saved``) agree with these on what the run depends on."""
        check_resumable(saved, self, (*self.MODEL_KEYS, *self.LOOP_KEYS))


# What a checkpoint from before an option existed was trained with.
BEFORE_THE_OPTION = {"tie": False, "cutoffs": [], "decay": "none", "projection": 0, "weight_decay": 0.0,
                     "forget_bias": 1.0}


def fill_choices(options: Any, choices: dict[str, Any], resumed: dict[str, Any] | None) -> None:
    """Each of ``choices`` (a budget's) that ``options`` leave None or 'auto' takes its value; resuming,
    the checkpoint's options (``resumed``) decide instead, whatever this session's budget."""
    resumed = {**BEFORE_THE_OPTION, **resumed} if resumed else {}
    for name, value in choices.items():
        if getattr(options, name) in (None, "auto"):
            setattr(options, name, resumed.get(name, value))


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
