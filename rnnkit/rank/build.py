"""Dialogues → a response-ranking dataset in the Ubuntu Dialogue Corpus's own layout.

* ``train.csv``: ``Context,Utterance,Label`` — each context with its true next turn (label 1) and
  with a random turn from another dialogue (label 0): half and half.
* ``valid.csv``, ``test.csv``: ``Context,Ground Truth Utterance,Distractor_0`` … ``Distractor_8`` —
  the true next turn among 9 distinct turns drawn from other dialogues of the same split.

A context is up to ``context_turns`` turns before the response, in the same dialogue; as in the
UDC, each utterance ends with ``__eou__`` and each turn with ``__eot__``. Splits never divide a
unit: a play (``split_by="source"``) or a conversation (``"dialogue"``), chosen at random under
``seed`` — the same seed, the same files. ``meta.json`` records the sizes and which units went where,
and ``train-text.txt`` holds the training split's turns, one per line: text to pretrain an encoder
on (``rnnkit prepare --lines``, ``rnnkit train``) without ever reading a held-out dialogue.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._version import __version__
from rnnkit.errors import RnnkitError
from rnnkit.fsutil import atomic_directory
from rnnkit.rank.dialogue import Dialogue, Turn

EOU, EOT = "__eou__", "__eot__"
DISTRACTORS = 9
TRAIN_COLUMNS = ["Context", "Utterance", "Label"]
EVAL_COLUMNS = ["Context", "Ground Truth Utterance", *[f"Distractor_{i}" for i in range(DISTRACTORS)]]
FORMAT = "rnnkit-rank-data"
SPLITS = ("train", "valid", "test")


def turn_text(turn: Turn) -> str:
    """A turn as the UDC writes a response: each utterance followed by ``__eou__``."""
    return " ".join(f"{u} {EOU}" for u in turn.utterances)


def context_text(turns: Sequence[Turn]) -> str:
    """Turns as the UDC writes a context: utterances end with ``__eou__``, turns with ``__eot__``."""
    return " ".join(f"{turn_text(t)} {EOT}" for t in turns)


@dataclass
class Example:
    context: str
    response: str
    dialogue: int  # index of its dialogue: distractors come from others


def examples(dialogues: Sequence[Dialogue], context_turns: int) -> list[Example]:
    """Every turn after a dialogue's first, with up to ``context_turns`` turns before it."""
    found = []
    for index, dialogue in enumerate(dialogues):
        for i in range(1, len(dialogue.turns)):
            context = dialogue.turns[max(0, i - context_turns):i]
            found.append(Example(context_text(context), turn_text(dialogue.turns[i]), index))
    return found


def assign_splits(units: Sequence[str], valid_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Each unit's split: ``round(fraction × units)`` units (at least one) each for valid and test,
    drawn under ``seed``; the rest train."""
    names = sorted(set(units))
    n_valid, n_test = (max(1, round(f * len(names))) if f > 0 else 0 for f in (valid_fraction, test_fraction))
    if n_valid + n_test >= len(names):
        raise RnnkitError(f"{len(names)} {'play' if len(names) == 1 else 'units'} cannot make train, valid and test "
                          "splits; give more dialogues or lower --valid-fraction/--test-fraction")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    return {name: "valid" if k < n_valid else "test" if k < n_valid + n_test else "train"
            for k, name in enumerate(order)}


def _other(pool: list[Example], rng: np.random.Generator, avoid: Example, taken: set[str]) -> str:
    """A response from the pool, of another dialogue, not the true one nor one already taken."""
    for _ in range(10_000):
        candidate = pool[int(rng.integers(len(pool)))]
        if candidate.dialogue != avoid.dialogue and candidate.response != avoid.response \
                and candidate.response not in taken:
            return candidate.response
    raise RnnkitError("too few distinct turns in other dialogues to draw distractors from; give more dialogues")


def _csv(rows: list[list[str]], header: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def build_dataset(dialogues: Sequence[Dialogue], out: str | Path, *, context_turns: int = 4,
                  split_by: str = "source", valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
                  force: bool = False, left_out: dict[str, int] | None = None) -> dict[str, Any]:
    """Write ``train.csv``, ``valid.csv``, ``test.csv`` and ``meta.json`` into ``out`` (atomically);
    returns the meta (with ``left_out``: what the reader of the dialogues did not keep, and why)."""
    if context_turns < 1:
        raise RnnkitError("--context-turns must be at least 1")
    if not dialogues:
        raise RnnkitError("no dialogue of two turns or more was found; check the input")
    unit_of = (lambda i, d: d.source) if split_by == "source" else (lambda i, d: f"{d.source}#{i}")  # noqa: E731
    units = [unit_of(i, d) for i, d in enumerate(dialogues)]
    split_of = assign_splits(units, valid_fraction, test_fraction, seed)
    train_text = "".join(f"{t.text}\n" for i, d in enumerate(dialogues) if split_of[units[i]] == "train"
                         for t in d.turns)
    pools: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for example in examples(dialogues, context_turns):
        pools[split_of[units[example.dialogue]]].append(example)
    rng = np.random.default_rng(seed)
    rows: dict[str, list[list[str]]] = {split: [] for split in SPLITS}
    for example in pools["train"]:
        rows["train"].append([example.context, example.response, "1"])
        rows["train"].append([example.context, _other(pools["train"], rng, example, set()), "0"])
    for split in ("valid", "test"):
        for example in pools[split]:
            drawn: list[str] = []  # in the order drawn: a set's order would change from run to run
            for _ in range(DISTRACTORS):
                drawn.append(_other(pools[split], rng, example, set(drawn)))
            rows[split].append([example.context, example.response, *drawn])
    meta = {"format": FORMAT, "format_version": 1, "rnnkit_version": __version__, "context_turns": context_turns,
            "split_by": "play" if split_by == "source" else "dialogue", "seed": seed, "left_out": left_out or {},
            "splits": {split: {"rows": len(rows[split]), "examples": len(pools[split]),
                               "units": sorted(u for u, s in split_of.items() if s == split)} for split in SPLITS}}
    with atomic_directory(out, force=force) as tmp:
        for split in SPLITS:
            header = TRAIN_COLUMNS if split == "train" else EVAL_COLUMNS
            (tmp / f"{split}.csv").write_text(_csv(rows[split], header), encoding="utf-8")
        (tmp / "train-text.txt").write_text(train_text, encoding="utf-8")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta
