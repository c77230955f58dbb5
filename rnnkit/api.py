"""One Python entry for every kind: ``rnnkit.train`` trains whatever the data says, and returns
the trained model as ``rnnkit.load`` opens it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.io.modeldir import open_model
from rnnkit.kinds import lookup, of_data


def train(data: Any, out: str | Path, *, kind: str | None = None, **options: Any) -> Any:
    """Train a model on ``data`` into the model directory ``out``, and return it, ready to use.

    ``data``: a prepared corpus (``rnnkit.prepare``) trains a language model, a ranking dataset
    (``rnnkit rank build``) a ranker, a pairs directory or TSV file an encoder–decoder; ``kind``
    ("lm", "ranker", "seq2seq") says so where the data cannot. ``options`` are the command line's
    flags by their Python names (``--max-time 300`` is ``max_time=300``), and the trainers' own:
    ``resume``, ``force``, ``log``, ``progress``, ``tensorboard``, and a language model's ``recipe``.
    The run's summary is the model's ``summary``.
    """
    record = lookup(kind) if kind is not None else of_data(data)
    summary = record.part("train")(data, out, **options)
    model = open_model(out)
    model.summary = summary
    return model
