"""What every verb's module shares: adding a verb, printing JSON, reading lines of input."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


class StoreOnce(argparse._StoreAction):
    """An option's value, stored once: given twice, argparse would keep the last silently
    (``--seed 1 --seed 2``); here that is an error that says so. An option of several values
    takes them either way: ``--cell rnn lstm`` or ``--cell rnn --cell lstm``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        given = namespace.__dict__.setdefault("_given_options", set())
        if option_string is not None and self.dest in given:
            if self.nargs in ("+", "*"):
                setattr(namespace, self.dest, [*getattr(namespace, self.dest), *values])
                return
            parser.error(f"{option_string} is given twice; give it once")
        given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


# Every number a flag takes is checked here, by the flag's name, for every verb: a float must be
# finite (NaN and infinity are refused), and these lie in an interval: "[a, b]", "(a, b)", "[a, )".
BOUNDS: dict[str, str] = {
    "seed": "[0, 4294967295]", "port": "[1, 65535]", "beam": "[1, 64]", "top_p": "(0, 1]", "dropout": "[0, 1)",
    "valid_fraction": "[0, 1]", "test_fraction": "[0, 1]",
    **dict.fromkeys(("temperature", "lr", "max_time", "epochs", "deadline"), "(0, )"),
    **dict.fromkeys(("min_length", "batch_window_ms", "evaluate_every", "clip", "weight_decay"), "[0, )"),
    **dict.fromkeys(("top", "top_k", "n", "length", "max_length", "max_len", "max_body_bytes", "max_sentences",
                     "max_tokens", "max_work", "max_generate", "max_steps", "batch_size", "hidden", "layers", "embedding",
                     "patience", "grad_accum", "context_turns", "limit", "repeats"), "[1, )"),
}


def checked(kind: type, name: str) -> Callable[[str], Any]:
    """The argparse ``type`` of a number flag ``name``: parses, then checks it against ``BOUNDS``."""
    interval = BOUNDS.get(name, "( , )")
    low, high = (float(x) if x.strip() else None for x in interval[1:-1].split(","))

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}")
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        shown = interval.replace(".0", "")
        if low is not None and (value < low or (interval[0] == "(" and value == low)):
            raise argparse.ArgumentTypeError(f"{text} is too small: give a value in {shown}")
        if high is not None and (value > high or (interval[-1] == ")" and value == high)):
            raise argparse.ArgumentTypeError(f"{text} is too large: give a value in {shown}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


class Parser(argparse.ArgumentParser):
    """The rnnkit command's parser, and each verb's (sub-parsers take their parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, StoreOnce)
        self.register("action", "store", StoreOnce)

    def add_argument(self, *flags: Any, **kwargs: Any) -> argparse.Action:
        if kwargs.get("type") in (int, float):
            name = kwargs.get("dest") or next((f for f in flags if f.startswith("--")), flags[0]).lstrip("-")
            kwargs["type"] = checked(kwargs["type"], name.replace("-", "_"))
        return super().add_argument(*flags, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        """One line, exit 2, as every other mistake (argparse would print its usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_verb(parent: Any, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """A sub-command of ``parent`` (a subparsers action) that runs ``handler``."""
    p = parent.add_parser(name, help=help, description=help)
    p.set_defaults(handler=handler)
    return p


def print_json(obj: Any) -> None:
    """One JSON document on one line: every ``--json`` output is JSON lines (``| jq`` and
    line-by-line readers both work)."""
    print(json.dumps(obj, ensure_ascii=False))


def say(*lines: str) -> None:
    print("\n".join(lines))


def input_lines(path: str | None, encoding_errors: str = "strict") -> list[str]:
    """The lines of a file (or stdin for ``-`` or None), without their line ends."""
    from rnnkit.text.readers import check_input, decoded_lines

    path = path or "-"
    check_input(path)
    return [line.rstrip("\r\n") for line in decoded_lines(path, encoding_errors)]


def add_encoding_errors(p: argparse.ArgumentParser) -> None:
    """``--encoding-errors``, for every verb that reads a user's text file."""
    p.add_argument("--encoding-errors", default="strict", choices=["strict", "replace", "ignore"],
                   help="what to do with bytes that are not UTF-8 (default: stop and say where)")


Option = Callable[..., None]


def option_adder(p: argparse.ArgumentParser, defaults: Any, word: str = "default") -> Option:
    """An ``add_argument`` for a trainer's options: left out, an option is not set (the options'
    dataclass, ``defaults``, decides it), and its help shows that value (or ``shown``)."""

    def option(flag: str, shown: str | None = None, **kwargs: Any) -> None:
        value = getattr(defaults, flag.lstrip("-").replace("-", "_"))
        shown = shown or ({True: "on", False: "off"}[value] if isinstance(value, bool)
                          else ("none" if value is None else value))
        kwargs["help"] = (kwargs.get("help", "") + f" ({word}: {shown})").strip()
        p.add_argument(flag, default=argparse.SUPPRESS, **kwargs)

    return option


def add_loop_options(p: argparse.ArgumentParser, option: Option, shown: dict[str, str] | None = None) -> None:
    """The trainer's options, the same for every kind (``LoopOptions``); ``shown``: a help's
    value in place of the default (a budget's choice)."""
    shown = shown or {}
    option("--engine", choices=["auto", "numpy", "torch"],
           help="torch (the fast engine; the default when installed) or numpy (the reference)")
    option("--device", choices=["auto", "cpu", "cuda"])
    option("--optimizer", choices=["sgd", "rmsprop", "adam"])
    option("--lr", type=float, help="learning rate", shown=shown.get("lr"))
    option("--batch-size", type=int, help="rows per step, over every process")
    option("--epochs", type=float, help="passes over the training data; left out, a --max-time or --max-steps "
                                        "alone ends the run", shown=shown.get("epochs"))
    option("--max-steps", type=int, help="stop after this many steps")
    option("--max-time", type=float, help="stop after this many seconds")
    option("--clip", type=float, help="clip gradients to this global norm")
    option("--weight-decay", type=float, help="shrink the weight matrices by 1 - lr × this after each step "
                                              "(decoupled, as AdamW)", shown=shown.get("weight_decay"))
    option("--seed", type=int)
    option("--evaluate-every", type=float, help="epochs between evaluations and checkpoints")
    option("--dtype", choices=["float32", "float64"])
    option("--halve-lr", action=argparse.BooleanOptionalAction,
           help="halve the learning rate when the validation loss rises (the seed's rule)")
    option("--decay", choices=["auto", "none", "linear", "cosine"],
           help="the learning rate falls to 0 over the run's budget: --epochs, --max-steps or --max-time, "
                "whichever ends it first", shown=shown.get("decay"))
    option("--keep", choices=["best", "last"], help="the weights of the lowest validation loss, or the last ones")
    option("--patience", type=int, help="stop after this many evaluations without a new best")
    option("--grad-accum", type=int, help="gather each step's gradients over this many micro-batches (less memory, "
                                          "the same step; torch engine)")
    option("--precision", choices=["auto", "fp32", "bf16", "fp16"],
           help="mixed precision: bf16 (torch engine), or fp16 with a gradient scaler (CUDA); float32 weights "
                "either way; auto: bf16 on a CPU with bf16 in hardware (AVX-512 BF16, AMX), else fp32")
    p.add_argument("--backend", choices=["nccl", "gloo"],
                   help="under torchrun: the process group's backend (default: nccl on CUDA, gloo on CPU)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events to MODEL/tensorboard")
    p.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    p.add_argument("--json", action="store_true", help="print a JSON summary (progress goes to stderr, as always)")


def train_arguments(args: argparse.Namespace, options_class: type) -> dict[str, Any]:
    """What every trainer takes from the command line: the run's arguments and the options given."""
    return {"resume": args.resume, "force": args.force, "tensorboard": args.tensorboard, "backend": args.backend,
            **options_of(args, options_class)}


def options_of(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The options given on the command line that ``config_class`` (a dataclass) takes."""
    return {f: getattr(args, f) for f in config_class.__dataclass_fields__ if getattr(args, f, None) is not None}


def run_training(args: argparse.Namespace, start: Callable[[Callable[[str], None]], dict[str, Any]],
                 describe: Callable[[dict[str, Any]], str]) -> int:
    """Run ``start(log)`` (a trainer); its summary as JSON or as ``describe``'s line; 130 when a
    signal stopped it. The log (progress, evaluations) goes to stderr, so stdout holds the summary
    alone, for every verb. Under torchrun, only the main process prints."""
    from rnnkit.trainer.distributed import is_main_process
    from rnnkit.trainer.loop import Interrupted

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    try:
        summary = start(log)
    except Interrupted as e:
        if is_main_process():
            print(f"rnnkit: {e}", file=sys.stderr)
        return 130
    if not is_main_process():
        return 0
    if args.json:
        print_json(summary)
    else:
        print(describe(summary))
    return 0


def id_list(text: str) -> list[int]:
    """An argparse type: ids separated by commas (``--cutoffs 2000,6000``)."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ids separated by commas, such as 2000,6000 (got {text!r})") from None


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    """``--cache N``: a language model's neural cache (``rnnkit fit-cache``) over N positions."""
    parser.add_argument("--cache", type=int, default=None, metavar="N",
                        help="language models: the neural cache over the last N positions (default: as fitted by "
                             "`rnnkit fit-cache`, none if it was not; 0 turns it off)")
