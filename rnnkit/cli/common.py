"""What every verb's module shares: adding a verb, printing JSON, reading lines of input."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from rnnkit.options import literal_help

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


# A number flag that no declaration holds (an option declared with ``rnnkit.options.option`` carries
# its own bounds) is checked here, by the flag's name, for every verb: a float must be finite (NaN
# and infinity are refused), and these lie in an interval: "[a, b]", "(a, b)", "[a, )".
BOUNDS: dict[str, str] = {
    "seed": "[0, 4294967295]", "port": "[1, 65535]", "beam": "[1, 64]", "max_len": "[1, 100000]",
    "valid_fraction": "[0, 1]", "test_fraction": "[0, 1]",
    **dict.fromkeys(("h", "threshold", "train_seconds"), "(0, )"),
    **dict.fromkeys(("clip", "init_scale", "vocab_size"), "[0, )"),  # --cache: its verb says what 0 means
    **dict.fromkeys(("top", "length", "hidden", "layers", "embedding", "context_turns", "limit", "repeats",
                     "bptt_truncate", "distance", "windows", "losses_per_window", "segment", "window"), "[1, )"),
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
    """The rnnkit command's parser, and each verb's (sub-parsers take their parent's class). Every
    help text is taken literally (``literal_help``), so that no verb's ``--help`` can fail."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, StoreOnce)
        self.register("action", "store", StoreOnce)

    def add_subparsers(self, **kwargs: Any) -> Any:
        action = super().add_subparsers(**kwargs)
        add_parser = action.add_parser

        def add_literal(name: str, **options: Any) -> argparse.ArgumentParser:
            if isinstance(options.get("help"), str):
                options["help"] = literal_help(options["help"])
            return add_parser(name, **options)

        action.add_parser = add_literal
        return action

    def add_argument(self, *flags: Any, **kwargs: Any) -> argparse.Action:
        if isinstance(kwargs.get("help"), str):
            kwargs["help"] = literal_help(kwargs["help"])
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


def add_engine_option(p: argparse.ArgumentParser, device: bool = False) -> None:
    """``--engine`` (and ``--device``), for every verb that runs a model: the engines there are, and
    the devices they run on (``models.engine``)."""
    from rnnkit.models.engine import ENGINES

    p.add_argument("--engine", default="auto", choices=["auto", *ENGINES],
                   help="which engine runs the model (default auto: the fast one where it is installed)")
    if device:
        devices = dict.fromkeys(d for e in ENGINES.values() for d in e.devices)
        p.add_argument("--device", default="auto", choices=["auto", *devices],
                       help="where it runs (default auto: a GPU where there is one)")


def add_training_flags(p: argparse.ArgumentParser, options: type, word: str = "default") -> None:
    """A trainer's flags: one for each of its options (``options``: a kind's dataclass, whose
    declarations say each flag's type, bounds and help), then the run's own arguments."""
    from rnnkit.options import add_flags

    add_flags(p, options, word=word)
    p.add_argument("--backend", choices=["nccl", "gloo"],
                   help="under torchrun: the process group's backend (default: nccl on CUDA, gloo on CPU)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events to MODEL/tensorboard")
    p.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    p.add_argument("--json", action="store_true", help="print a JSON summary (progress goes to stderr, as always)")


def train_arguments(args: argparse.Namespace, options: type) -> dict[str, Any]:
    """What every trainer takes from the command line: the run's arguments and the options given."""
    from rnnkit.options import given

    return {"resume": args.resume, "force": args.force, "tensorboard": args.tensorboard, "backend": args.backend,
            **given(args, options)}


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
