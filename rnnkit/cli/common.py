"""What every verb's module shares: adding a verb, printing JSON, reading lines of input."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def add_verb(parent: Any, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """A sub-command of ``parent`` (a subparsers action) that runs ``handler``."""
    p = parent.add_parser(name, help=help, description=help)
    p.set_defaults(handler=handler)
    return p


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def say(*lines: str) -> None:
    print("\n".join(lines))


def input_lines(path: str | None, encoding_errors: str = "strict") -> list[str]:
    """The lines of a file (or stdin for ``-`` or None), without their line ends."""
    from rnnkit.text.readers import check_input, decoded_lines

    path = path or "-"
    check_input(path)
    return [line.rstrip("\r\n") for line in decoded_lines(path, encoding_errors)]
