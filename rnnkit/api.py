"""One Python entry for every kind: ``rnnkit.train`` trains whatever the data says, and returns
the trained model as ``rnnkit.load`` opens it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.io.card import invocation
from rnnkit.io.modeldir import open_model
from rnnkit.kinds import lookup, of_data


def train(data: Any, out: str | Path, *, kind: str | None = None, **options: Any) -> Any:
    """Train a model on ``data`` into the model directory ``out``, and return it, ready to use.

    ``data``: a prepared corpus (``rnnkit.prepare``) trains a language model, a ranking dataset
    (``rnnkit rank build``) a ranker, a pairs directory or TSV file an encoder–decoder; ``kind``
    ("lm", "ranker", "seq2seq") says so where the data cannot. ``options`` are the command line's
    flags by their Python names (``--max-time 300`` is ``max_time=300``), checked as the flags
    are, and the trainers' own: ``resume``, ``force``, ``log``, ``progress``, ``tensorboard``, and
    a language model's ``recipe``. The run's summary is the model's ``summary``.
    """
    path_argument("out", out)
    record = lookup(kind) if kind is not None else of_data(data)
    said = invocation.set(python_call(data, out, kind, options)) if invocation.get() is None else None
    try:  # the model card shows the call that trains the model again
        summary = record.part("train")(data, out, **options)
    finally:
        if said is not None:
            invocation.reset(said)
    model = open_model(out)
    model.summary = summary
    return model


def python_call(data: Any, out: Any, kind: str | None, options: dict[str, Any]) -> str:
    """The ``rnnkit.train(...)`` call that trains the same model again (the log and progress
    functions left out: they change nothing it learns)."""
    given = [repr(str(getattr(data, "path", data))), repr(str(out)), *([f"kind={kind!r}"] if kind else []),
             *(f"{name}={value!r}" for name, value in options.items() if name not in ("log", "progress"))]
    return f"rnnkit.train({', '.join(given)})"


def load(path: str | Path, *, engine: str = "auto", device: str = "auto") -> Any:
    """Any model directory, ready to use as its kind makes it (a ``LanguageModel``, a ``Ranker``, a
    ``Seq2Seq``, …) on ``engine`` and ``device``."""
    return open_model(path_argument("path", path), engine=engine, device=device)


def path_argument(name: str, value: Any) -> Path:
    """``value`` as a path, or one error saying that ``name=`` takes one."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise RnnkitError(f"{name}= must be a path (a str or a pathlib.Path); got {value!r}")
    return Path(value)
