"""A trained encoder–decoder, ready to use: ``rnnkit.load_seq2seq(path).translate([...])``."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.batching import pad_batch
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import ModelFiles, load_model
from rnnkit.models.engine import open_engine
from rnnkit.options import argument, texts_argument
from rnnkit.seq2seq.config import Seq2SeqConfig
from rnnkit.seq2seq.data import Seq2SeqIds
from rnnkit.seq2seq.decode import WINDOW, Decoded, Window, beam_search, greedy
from rnnkit.seq2seq.engine import Seq2SeqEngine

BATCH = 64  # sources decoded together
BEAMS = "[1, 64]"  # beam widths: wider ones cost far more and gain nothing on the Folio


@dataclass
class Translation:
    source: str
    output: str
    source_tokens: list[str]
    output_tokens: list[str]
    log_prob: float
    weights: np.ndarray | None  # (output tokens + 1, source tokens): each output step's attention


class Seq2Seq:
    """An encoder–decoder and its vocabulary."""

    def __init__(self, config: Seq2SeqConfig, ids: Seq2SeqIds, engine: Seq2SeqEngine,
                 path: Path | None = None) -> None:
        self.config, self.ids, self.engine, self.path = config, ids, engine, path

    def __repr__(self) -> str:
        return (f"Seq2Seq({str(self.path)!r}, {self.config.cell}, hidden {self.config.hidden}, attention "
                f"{self.config.attention}, vocabulary {len(self.ids.vocab):,}, {self.ids.text.level} level, "
                f"{self.engine.name} engine)")

    @classmethod
    def from_files(cls, files: ModelFiles, *, engine: str = "auto", device: str = "auto") -> Seq2Seq:
        engine_ = open_engine(files.config, files.params, engine=engine, device=device)
        return cls(files.config, Seq2SeqIds(files.text, files.vocab), engine_, files.path)

    @classmethod
    def load(cls, path: str | Path, *, engine: str = "auto", device: str = "auto") -> Seq2Seq:
        return cls.from_files(load_model(path, "seq2seq"), engine=engine, device=device)

    def _sources(self, texts: Sequence[str]) -> tuple[list[list[str]], list[np.ndarray]]:
        """Each source's tokens and ids, cut to the model's limit (with a warning)."""
        if any(not t.strip() for t in texts):
            raise RnnkitError("an empty source; give text to translate")
        tokens = self.ids.text.split(list(texts))
        cut = sum(len(t) > self.config.max_source for t in tokens)
        if cut:
            print(f"warning: {cut} source(s) longer than the model's {self.config.max_source} tokens were cut "
                  "to that length", file=sys.stderr)
        tokens = [t[: self.config.max_source] for t in tokens]
        return tokens, [self.ids.vocab.encode(t) for t in tokens]

    def decode(self, texts: Sequence[str], *, beam: int = 1, max_len: int | None = None, guard: bool = True,
               window: Window | None = WINDOW) -> list[Translation]:
        """Each source's output (greedy, or beam search of width ``beam``), with its attention;
        ``guard``: no output falls into a loop; ``window``: each step attends near the last one's
        focus (``rnnkit.seq2seq.decode``)."""
        texts = texts_argument("texts", texts)
        beam, max_len = argument("beam", beam, int, BEAMS), argument("max_len", max_len, int | None, "[1, 100000]")
        guard = argument("guard", guard, bool)
        max_len = self.config.max_target if max_len is None else max_len
        tokens, rows = self._sources(texts)
        limits = np.array([self.length_limit(len(r), max_len) for r in rows])
        order = np.argsort([len(r) for r in rows], kind="stable")  # similar lengths together
        decoded: list[Decoded | None] = [None] * len(rows)
        for a in range(0, len(rows), BATCH):
            chosen = order[a:a + BATCH]
            x, mask = pad_batch([rows[i] for i in chosen])
            args = (self.engine, x, mask, self.ids.start_id, self.ids.end_id, limits[chosen])
            found = greedy(*args, guard=guard, window=window) if beam == 1 else \
                beam_search(*args, beam, guard=guard, window=window)
            for i, d in zip(chosen, found):
                decoded[i] = d
        results = []
        for text, source, d in zip(texts, tokens, decoded):
            weights = None if d.weights is None else d.weights[:, : len(source)]
            results.append(Translation(text, self.ids.decode(d.ids), source,  # as written, unknown or not
                                       self.ids.vocab.decode(d.ids), d.log_prob, weights))
        return results

    def length_limit(self, source_length: int, max_len: int) -> int:
        """The longest output for a source of ``source_length`` tokens."""
        ratio = self.config.length_ratio
        return max_len if ratio is None else min(max_len, math.ceil(ratio * source_length) + 10)

    def translate(self, texts: Sequence[str], *, beam: int = 1, max_len: int | None = None, guard: bool = True,
                  window: Window | None = WINDOW) -> list[str]:
        """The outputs of ``texts``, in order."""
        return [t.output for t in self.decode(texts, beam=beam, max_len=max_len, guard=guard, window=window)]


def load_seq2seq(path: str | Path, *, engine: str = "auto", device: str = "auto") -> Seq2Seq:
    """A trained encoder–decoder from its model directory."""
    return Seq2Seq.load(path, engine=engine, device=device)
