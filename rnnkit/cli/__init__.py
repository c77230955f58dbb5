"""The ``rnnkit`` command: each group of verbs parses its own arguments (in its module here) and
calls the library; this module assembles them and turns a user's mistake into one line."""

from __future__ import annotations

import argparse
import errno
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from rnnkit._version import __version__
from rnnkit.cli import data, models, quickstart, serve
from rnnkit.cli.common import Parser
from rnnkit.errors import RnnkitError
from rnnkit.io.card import invocation
from rnnkit.kinds import lookup, names, resolve

SHARED = (serve, models, quickstart)  # the verbs of every kind; each kind's come from its record


def groups() -> list[Any]:
    """The modules that add the verbs: the data's, each kind's (in ``rnnkit.kinds``), the shared ones."""
    return [data, *(module for name in names() for module in map(resolve, lookup(name).cli)),
            *SHARED]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks over text.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for group in groups():
        group.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    said = invocation.set("rnnkit " + shlex.join(sys.argv[1:] if argv is None else [str(a) for a in argv]))
    try:
        return args.handler(args)
    except RnnkitError as e:
        print(f"rnnkit: error{_process()}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnkit tokenize --file big.txt | head`
        sys.stderr.close()
        return 0
    except OSError as e:  # the machine's fault, not the user's: a full disk, a read-only or vanished directory
        print(f"rnnkit: error{_process()}: {describe_os_error(e)}", file=sys.stderr)
        return 1
    finally:
        invocation.reset(said)  # (a model card names the command that trained it)


def _process() -> str:
    """Under torchrun, which process speaks (each says what stopped it)."""
    import os

    return f" (process {os.environ['RANK']} of {os.environ['WORLD_SIZE']})" if int(os.environ.get("WORLD_SIZE", 1)) > 1 else ""


def describe_os_error(e: OSError) -> str:
    """One line for a failed read or write, and what was kept (every file rnnkit writes is
    replaced atomically, so a failed write leaves the previous version)."""
    where = f" ({e.filename})" if e.filename else ""
    short_write = e.errno is None and "written" in str(e)  # numpy's tofile on a full disk: no errno
    if e.errno in (errno.ENOSPC, errno.EDQUOT) or short_write:
        return (f"no space left on the device{where}; nothing was half-written (the previous checkpoint and "
                "files are kept): free some space and run the command again (train: with --resume)")
    return f"{e.strerror or e}{where}; nothing was half-written (the previous files are kept)"
