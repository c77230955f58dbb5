"""The trainer's options, the same for every kind, and a kind's options made of them.

``LoopOptions`` declares the loop's options once (``rnnkit.options``): the optimizer, the rate
and its schedule, the budget (epochs, steps, time), evaluation, precision, the engine. A kind's
training options are one dataclass (``kind_options``): every option its model config declares,
then the loop's — where the kind trains with another default, that default alone is given — and
its own run options in its subclass. Its flags, its Python keywords, the checks of both and the
docs' tables all come from those declarations.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields, make_dataclass, replace
from typing import Any, ClassVar, TypeVar

from rnnkit.errors import RnnkitError
from rnnkit.models.engine import ENGINES, check_engine_can, cpu_has_bf16, resolve_engine
from rnnkit.models.network import dtype_option
from rnnkit.models.optim import OPTIMIZERS
from rnnkit.options import Spec, build, check_fields, declared, option

Options = TypeVar("Options", bound="LoopOptions")

# The epochs of a run given a --max-time or --max-steps and no --epochs: a bound its own budget reaches
# first (a fixed count would end a timed run early on a faster machine, its rate already at 0).
UNBOUNDED_EPOCHS = 1000.0

# How the rate falls over a run's budget: a known budget is best spent ending near a zero rate.
DECAYS = {"none": lambda p: 1.0, "linear": lambda p: 1.0 - p, "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p))}
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# Caps every training's steps, whatever the command says: to try a tutorial's commands in minutes
# (the docs' own test runs every chapter verbatim with it), never for a model worth keeping.
STEPS_CAP = "RNNKIT_MAX_STEPS"


def steps_cap() -> int | None:
    """``$RNNKIT_MAX_STEPS`` as a number of steps, or None when it is unset or empty."""
    value = os.environ.get(STEPS_CAP, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise RnnkitError(f"{STEPS_CAP}={value!r} is not a number of steps of at least 1 (it caps every "
                          f"training's steps); set it to one, or unset it to train as the command says")
    return int(value)


def _engines() -> tuple[str, ...]:
    return ("auto", *ENGINES)


def _devices() -> tuple[str, ...]:
    return ("auto", *dict.fromkeys(d for e in ENGINES.values() for d in e.devices))


@dataclass
class LoopOptions:
    """The loop's options, the same for every kind. ``resume=False``: an option a resumed run may change."""

    optimizer: str = option("adam", "sgd, rmsprop or adam", choices=OPTIMIZERS)
    lr: float = option(0.002, "learning rate", bounds="(0, )", resume=False)
    batch_size: int = option(64, "rows per step, over every process", bounds="[1, )")
    epochs: float | None = option(None, "passes over the training data; left out, a --max-time or --max-steps "
                                        "alone ends the run", bounds="(0, )", resume=False)
    max_steps: int | None = option(None, "stop after this many steps", bounds="[1, )", resume=False)
    max_time: float | None = option(None, "the whole command's seconds: reading the data, training, the final "
                                          "evaluation and the model written", bounds="(0, )", resume=False)
    clip: float | None = option(5.0, "clip gradients to this global norm", bounds="(0, )")
    weight_decay: float | None = option(0.0, "shrink the weight matrices by 1 - lr × this after each step "
                                             "(decoupled, as AdamW)", bounds="[0, )")
    seed: int = option(0, "the seed of the weights, the data order and dropout", bounds="[0, 4294967295]")
    engine: str = option("auto", "torch (the fast engine; the default when installed) or numpy (the reference)",
                         choices=_engines)
    device: str = option("auto", "where the torch engine runs", choices=_devices, resume=False)
    evaluate_every: float = option(0.5, "epochs between evaluations and checkpoints", bounds="(0, )")
    halve_lr: bool = option(True, "halve the learning rate when the validation loss rises (the seed's rule)")
    decay: str = option("none", "the learning rate falls to 0 over the run's budget: --epochs, --max-steps or "
                                "--max-time, whichever ends it first (auto: the kind's choice)",
                        choices=("auto", *DECAYS))
    dtype: str = dtype_option()
    keep: str = option("best", "the weights of the lowest validation loss, or the last ones",
                       choices=("best", "last"), resume=False)
    patience: int | None = option(None, "stop after this many evaluations without a new best", bounds="[1, )",
                                  resume=False)
    grad_accum: int = option(1, "gather each step's gradients over this many micro-batches (less memory, the same "
                                "step; torch engine)", bounds="[1, )", resume=False)
    precision: str = option("fp32", "mixed precision: bf16 (torch engine), or fp16 with a gradient scaler (CUDA); "
                                    "float32 weights either way; auto: bf16 on a CPU with bf16 in hardware "
                                    "(AVX-512 BF16, AMX), else fp32", choices=PRECISIONS, resume=False)

    MIN_BATCH_SIZE: ClassVar[int] = 2
    EPOCHS: ClassVar[float] = 4.0  # each kind's: the bound of a run given no other
    TITLE: ClassVar[str] = "training"  # in messages: "a language model's training has no option 'x'"

    def check_loop(self, cell: str | None) -> None:
        """Decide 'auto' engine, device and precision for ``cell`` (None: no engine, a fitted
        baseline) and check what one value alone cannot say, before anything is written."""
        check_fields(self)
        if cell is not None:
            self.engine, self.device = resolve_engine(self.engine, self.device, cell)
        if self.batch_size < self.MIN_BATCH_SIZE:
            raise RnnkitError(f"--batch-size must be at least {self.MIN_BATCH_SIZE}")
        if self.decay == "auto":
            self.decay = "none"
        if self.grad_accum > 1:
            check_engine_can(self.engine, "micro_batches", "--grad-accum",
                             "the numpy engine takes a whole batch at once")
        self.check_precision()
        cap = steps_cap()
        if cap is not None and (self.max_steps is None or self.max_steps > cap):
            self.max_steps = cap
        if self.epochs is None:
            self.epochs = UNBOUNDED_EPOCHS if self.max_time or self.max_steps else self.EPOCHS
        if self.weight_decay is None:
            self.weight_decay = 0.0
        if not 0 <= self.weight_decay * self.lr < 1:
            raise RnnkitError(f"--weight-decay must be at least 0 and below 1/--lr ({1 / self.lr:g}): each step "
                              "shrinks the weights by 1 - lr × weight decay")

    def check_precision(self) -> None:
        """Decide "auto" (bf16 where the CPU has it in hardware: the same loss per step at about 1.5×
        the tokens/s, benchmarks/precision.py; float32 elsewhere, CUDA included) and check the choice."""
        engine = ENGINES.get(self.engine)
        computes = engine.precisions.get(self.device, ("fp32",)) if engine else ("fp32",)
        if self.precision == "auto":
            native = "bf16" in computes and self.device == "cpu" and self.dtype == "float32" and cpu_has_bf16()
            self.precision = "bf16" if native else "fp32"
        if self.precision not in computes:
            mixed = [e.name for e in ENGINES.values() if any(self.precision in p for p in e.precisions.values())]
            if engine is None or not any(self.precision in p for p in engine.precisions.values()):
                raise RnnkitError(f"--precision {self.precision} is for the {' and '.join(mixed)} engine; the "
                                  f"{self.engine} engine computes in its --dtype")
            where = " or ".join(d.upper() for d, p in engine.precisions.items() if self.precision in p)
            raise RnnkitError(f"--precision {self.precision} is for {where} (PyTorch's CPU LSTM has no fp16); on the "
                              f"{self.device.upper()} use {' or '.join(reversed(computes))}")
        if self.precision != "fp32" and self.dtype != "float32":
            raise RnnkitError("mixed precision keeps float32 weights; leave --dtype at float32")

    def factor(self, progress: float) -> float:
        """The share of the rate at ``progress`` (0 to 1) through the run's budget."""
        return DECAYS[self.decay](min(max(progress, 0.0), 1.0))

    @classmethod
    def resume_keys(cls) -> tuple[str, ...]:
        """What must match for a checkpoint to be resumed with these options."""
        return tuple(d.name for d in declared(cls) if d.spec.resume)

    def check_resumable(self, saved: dict[str, Any]) -> None:
        """A checkpoint's options (``saved``) agree with these on what the run depends on."""
        check_resumable(saved, self, self.resume_keys())

    @classmethod
    def make(cls: type[Options], **options: Any) -> Options:
        """These options from Python keywords, each checked as its flag is."""
        return build(cls, options, cls.TITLE)


def kind_options(config: type, *, exclude: Iterable[str] = (), defaults: dict[str, Any] | None = None,
                 shown: dict[str, str] | None = None, epochs: float = LoopOptions.EPOCHS) -> type[LoopOptions]:
    """A kind's training options as one dataclass: every option its model ``config`` declares
    for the command line (but ``exclude``: what the data or the run decides, such as the
    vocabulary's size), then ``LoopOptions``'. ``defaults``: where the kind trains with another
    default than the declaration's (None: the run decides, as ``shown`` says in --help and the
    docs); the declaration itself is not repeated. ``epochs``: the bound of a run given no other."""
    defaults, exclude = defaults or {}, set(exclude)
    shown = {"epochs": f"{epochs:g}, or none with a --max-time or --max-steps", **(shown or {})}
    loop = {f.name for f in fields(LoopOptions)}
    model = [_restated(d, defaults.get(d.name, d.default), shown.get(d.name)) for d in declared(config)
             if d.spec.cli and d.name not in exclude and d.name not in loop]
    changed = [_restated(d, defaults.get(d.name, d.default), shown.get(d.name)) for d in declared(LoopOptions)
               if d.name in defaults or d.name in shown]
    unknown = set(defaults) - {name for name, _, _ in model + changed}
    if unknown:
        raise TypeError(f"defaults for options {config.__name__} does not declare: {', '.join(sorted(unknown))}")
    # The model's options first, then the loop's (a base's fields come first; a changed default keeps its place).
    models = make_dataclass(f"{config.__name__}ModelOptions", model)
    return make_dataclass(f"{config.__name__}Options", changed, bases=(LoopOptions, models),
                          namespace={"EPOCHS": epochs})


def _restated(d: Any, default: Any, shown: str | None) -> tuple[str, Any, Any]:
    """A field of the kind's options: the declaration ``d`` with its default (and --help's word for it)."""
    hint = d.hint if default is not None or d.optional else d.hint | None
    spec: Spec = replace(d.spec, shown=shown) if shown is not None else d.spec
    if default is None and spec.shown is None and d.default not in (None, MISSING):
        spec = replace(spec, shown="the run's choice")
    return d.name, hint, field(default=default, metadata={"option": spec})


# What a checkpoint from before an option existed was trained with.
BEFORE_THE_OPTION = {"tie": False, "cutoffs": [], "decay": "none", "projection": 0, "weight_decay": 0.0,
                     "forget_bias": 1.0, "softmax": "full", "bidirectional": False, "input_feeding": False,
                     "encoder_layers": 1}


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
    changed = [k for k in keys if _stored(saved.get(k)) != _stored(getattr(options, k))]
    if changed:
        raise RnnkitError(f"the checkpoint was trained with different {', '.join(changed)} "
                          f"({', '.join(f'{k}={saved.get(k)}' for k in changed)}); resume with the same options")


def _stored(value: Any) -> Any:
    """A value as a checkpoint's JSON holds it (a tuple comes back a list)."""
    return list(value) if isinstance(value, tuple) else value
