"""The ``rnnkit`` command: each group of verbs parses its own arguments (in its module here) and
calls the library; this module assembles them and turns a user's mistake into one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rnnkit._version import __version__
from rnnkit.cli import data, models, quickstart, rank, seq2seq, train, use
from rnnkit.cli.common import Parser
from rnnkit.errors import RnnkitError

GROUPS = (data, train, use, rank, seq2seq, models, quickstart)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks over text.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for group in GROUPS:
        group.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except RnnkitError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnkit tokenize --file big.txt | head`
        sys.stderr.close()
        return 0
