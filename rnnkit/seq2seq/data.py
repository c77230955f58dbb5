"""Parallel text: ``source<TAB>target`` pairs, read, checked and turned into ids.

``PAIRS`` is a directory holding ``train.tsv``, ``valid.tsv`` and (for evaluation) ``test.tsv``
— what ``rnnkit data get shakespeare-folio`` builds — or one TSV file, whose validation pairs are
then a seeded 5% held out. Columns after the second (the Folio corpus's play) are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.batching import make_batch, pad_batch
from rnnkit.errors import RnnkitError
from rnnkit.text.pipeline import TextPipeline
from rnnkit.text.readers import check_input
from rnnkit.text.vocab import (
    SENTENCE_END,
    SENTENCE_START,
    UNKNOWN_CHAR,
    UNKNOWN_TOKEN,
    Vocabulary,
    build_vocabulary,
)

SPLITS = ("train", "valid", "test")
HELD_OUT = 0.05  # of a single file, for validation


@dataclass
class Pairs:
    sources: list[str]
    targets: list[str]

    def __len__(self) -> int:
        return len(self.sources)

    def take(self, index: Sequence[int] | np.ndarray) -> Pairs:
        return Pairs([self.sources[i] for i in index], [self.targets[i] for i in index])


@dataclass
class Seq2SeqBatch:
    """Source and target rows of an encoder–decoder: the source padded (``x``, ``x_mask``), the
    target fed in as ``[START] + t`` (``y_in``) and predicted as ``t + [END]`` (``y_out``)."""

    x: np.ndarray
    x_mask: np.ndarray
    y_in: np.ndarray
    y_out: np.ndarray
    y_mask: np.ndarray

    @property
    def size(self) -> int:
        return len(self.x)

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.x, self.x_mask, self.y_in, self.y_out, self.y_mask

    def rows(self, part: slice) -> Seq2SeqBatch:
        return Seq2SeqBatch(*(a[part] for a in self.arrays))


def make_seq2seq_batch(sources: list[np.ndarray], targets: list[np.ndarray], start_id: int,
                       end_id: int) -> Seq2SeqBatch:
    x, x_mask = pad_batch(sources)
    target = make_batch(targets, start_id, end_id)
    return Seq2SeqBatch(x, x_mask, target.x, target.y, target.mask)


def read_tsv(path: str | Path) -> Pairs:
    """Every ``source<TAB>target`` line of a file; a line without a tab or with an empty side is
    an error that names it."""
    path = Path(path)
    check_input(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RnnkitError(f"{path} is not UTF-8 text (byte {e.start}); convert it first "
                          f"(e.g. iconv -f latin1 -t utf-8)") from None
    sources, targets = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise RnnkitError(f"{path}:{number}: no tab; each line is source<TAB>target")
        if not columns[0].strip() or not columns[1].strip():
            raise RnnkitError(f"{path}:{number}: an empty {'source' if not columns[0].strip() else 'target'}")
        sources.append(columns[0].strip())
        targets.append(columns[1].strip())
    if not sources:
        raise RnnkitError(f"{path} holds no pairs")
    return Pairs(sources, targets)


def read_split(data: str | Path, split: str, seed: int = 0) -> Pairs:
    """One split of ``data`` (a directory of ``{split}.tsv`` files, or one TSV file)."""
    data = Path(data)
    if data.is_dir():
        path = data / f"{split}.tsv"
        if not path.is_file():
            raise RnnkitError(f"{data} has no {split}.tsv (a pairs directory holds train.tsv, valid.tsv, test.tsv)")
        return read_tsv(path)
    pairs = read_tsv(data)
    if split == "test":
        return pairs
    order = np.random.default_rng(seed).permutation(len(pairs))
    if len(pairs) < 2 and split == "valid":
        raise RnnkitError(f"{data} holds {len(pairs)} pair; one file is split into training and validation pairs, "
                          "so give at least 2 (or a pairs directory with its own valid.tsv)")
    held = max(1, min(2000, int(len(pairs) * HELD_OUT))) if len(pairs) > 1 else 0
    return pairs.take(np.sort(order[:held] if split == "valid" else order[held:]))


def text_pipeline(level: str) -> TextPipeline:
    """Characters as they are, or words split at whitespace, case kept: normalising spelling is
    about exactly those."""
    return TextPipeline(level, "whitespace", lowercase=False)


@dataclass
class Seq2SeqIds:
    """Texts ↔ ids for an encoder–decoder: one vocabulary for both sides, the start and end markers first."""

    text: TextPipeline
    vocab: Vocabulary

    @classmethod
    def build(cls, level: str, pairs: Pairs, size: int) -> Seq2SeqIds:
        text = text_pipeline(level)
        unk = UNKNOWN_CHAR if level == "char" else UNKNOWN_TOKEN
        tokens = text.split(pairs.sources + pairs.targets)
        return cls(text, build_vocabulary(tokens, size, unk, reserved=(SENTENCE_START, SENTENCE_END)))

    @property
    def start_id(self) -> int:
        return self.vocab.id(SENTENCE_START)

    @property
    def end_id(self) -> int:
        return self.vocab.id(SENTENCE_END)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [self.vocab.encode(tokens) for tokens in self.text.split(list(texts))]

    def decode(self, ids: Sequence[int]) -> str:
        return self.text.detokenize(self.vocab.decode(ids)) if self.text.level == "char" \
            else " ".join(self.vocab.decode(ids))
