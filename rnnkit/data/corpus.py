"""PreparedCorpus: a prepared-corpus directory, read without re-tokenizing.

Layout (format 1)::

    meta.json               settings and statistics
    vocab.txt               one token per line, line number = id
    {split}.ids.npy         the split's token ids, flat, no sentence markers (uint16, or int32 for big vocabularies)
    {split}.offsets.npy     int64, sentence i is ids[offsets[i]:offsets[i+1]]

Word-level sentences are stored bare; ``SENTENCE_START``/``SENTENCE_END`` are added when batching.
Character-level units are lines, each with its newline, so a split read in order is the text.
All arrays are memory-mapped: opening a corpus of any size costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.fsutil import read_manifest
from rnnkit.text.pipeline import TextPipeline
from rnnkit.text.vocab import Vocabulary

FORMAT = "rnnkit-prepared"
FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")


@dataclass
class PreparedCorpus:
    path: Path
    meta: dict[str, Any]
    vocab: Vocabulary

    @classmethod
    def open(cls, path: str | Path) -> PreparedCorpus:
        path = Path(path)
        meta = read_manifest(path, "meta.json", FORMAT, FORMAT_VERSION, "a prepared corpus",
                             "make one with `rnnkit prepare`")
        vocab = Vocabulary.load(path / "vocab.txt", meta["unk_token"], size=meta["vocab_size"])
        return cls(path, meta, vocab)

    @property
    def level(self) -> str:
        return self.meta["level"]

    @property
    def text(self) -> TextPipeline:
        """How the corpus's text was read: what a model trained on it reads new text with."""
        return TextPipeline.from_dict(self.meta)

    @property
    def splits(self) -> list[str]:
        return [s for s in SPLITS if s in self.meta["splits"]]

    def check_split(self, split: str) -> None:
        """A clear error when the corpus has no such split."""
        if split not in self.meta["splits"]:
            have = ", ".join(self.splits) or "none"
            raise RnnkitError(f"{self.path} has no {split!r} split (it has: {have}); prepare it with --valid-fraction or --valid-file")

    def ids(self, split: str = "train") -> np.ndarray:
        """All token ids of a split, flat (memory-mapped)."""
        self.check_split(split)
        return np.load(self.path / f"{split}.ids.npy", mmap_mode="r")

    def offsets(self, split: str = "train") -> np.ndarray:
        """Sentence boundaries: sentence i is ``ids[offsets[i]:offsets[i+1]]`` (memory-mapped)."""
        self.check_split(split)
        return np.load(self.path / f"{split}.offsets.npy", mmap_mode="r")

    def sentences(self, split: str = "train") -> Iterator[np.ndarray]:
        ids, offsets = self.ids(split), self.offsets(split)
        for a, b in zip(offsets[:-1], offsets[1:]):
            yield ids[a:b]

    def num_sentences(self, split: str = "train") -> int:
        self.check_split(split)
        return int(self.meta["splits"][split]["sentences"])

    def num_tokens(self, split: str = "train") -> int:
        self.check_split(split)
        return int(self.meta["splits"][split]["tokens"])

    @property
    def start_id(self) -> int | None:
        return self.meta.get("sentence_start_id")

    @property
    def end_id(self) -> int | None:
        return self.meta.get("sentence_end_id")

    @property
    def unk_id(self) -> int:
        return self.vocab.unk_id

    def decode(self, ids: np.ndarray) -> list[str]:
        return self.vocab.decode(int(i) for i in ids)

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}={self.num_sentences(s)}" for s in self.splits)
        return f"PreparedCorpus({str(self.path)!r}, level={self.level!r}, vocab={len(self.vocab)}, sentences: {parts})"
