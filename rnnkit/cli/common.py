"""What every verb's module shares: adding a verb, printing JSON, reading lines of input."""

from __future__ import annotations

import argparse
import json
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


class Parser(argparse.ArgumentParser):
    """The rnnkit command's parser, and each verb's (sub-parsers take their parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, StoreOnce)
        self.register("action", "store", StoreOnce)


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


def add_training_options(p: argparse.ArgumentParser, *, halve_lr_default: str) -> None:
    """The options every trainer of the common loop takes (rank and seq2seq; ``rnnkit train`` has its recipes)."""
    p.add_argument("--optimizer", choices=["sgd", "rmsprop", "adam"])
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-time", type=float, help="seconds")
    p.add_argument("--clip", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--engine", choices=["auto", "numpy", "torch"])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--evaluate-every", type=float, help="epochs between evaluations and checkpoints")
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.add_argument("--halve-lr", action=argparse.BooleanOptionalAction, default=None,
                   help=f"halve the rate when the validation loss rises (default {halve_lr_default})")
    p.add_argument("--decay", choices=["none", "linear", "cosine"],
                   help="the rate falls to 0 over the run's budget (epochs, steps or time; default none)")
    p.add_argument("--keep", choices=["best", "last"], help="the weights of the lowest validation loss (default), "
                                                           "or the last ones")
    p.add_argument("--patience", type=int, help="stop after this many evaluations without a new best")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--force", action="store_true")
    p.add_argument("--json", action="store_true")


def options_of(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The options given on the command line that ``config_class`` (a dataclass) takes."""
    return {f: getattr(args, f) for f in config_class.__dataclass_fields__ if getattr(args, f, None) is not None}


def run_training(args: argparse.Namespace, start: Callable[[Callable[[str], None]], dict[str, Any]],
                 describe: Callable[[dict[str, Any]], str]) -> int:
    """Run ``start(log)`` (a trainer); its summary as JSON or as ``describe``'s line; 130 when a
    signal stopped it. With ``--json`` the log goes to stderr, so stdout holds the summary alone.
    Under torchrun, only the main process prints."""
    from rnnkit.train.distributed import is_main_process
    from rnnkit.train.loop import Interrupted

    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
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
