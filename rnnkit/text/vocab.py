"""Vocabulary: tokens ↔ ids, saved as ``vocab.txt`` (one token per line, line number = id).

Tokens are written with four escapes so that any token fits on one line: backslash ``\\\\``,
newline ``\\n``, carriage return ``\\r``, tab ``\\t`` (only character-level vocabularies and words
containing a backslash are affected).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rnnkit.errors import RnnkitError

SENTENCE_START = "SENTENCE_START"
SENTENCE_END = "SENTENCE_END"
UNKNOWN_TOKEN = "UNKNOWN_TOKEN"
UNKNOWN_CHAR = "\ufffd"  # the replacement character: the unknown symbol of character-level vocabularies

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def escape(token: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in token) if any(c in _ESCAPES for c in token) else token


def unescape(line: str) -> str:
    if "\\" not in line:
        return line
    out, chars = [], iter(line)
    for c in chars:
        out.append(_UNESCAPES.get(next(chars, ""), "\\") if c == "\\" else c)
    return "".join(out)


class Vocabulary:
    """An ordered list of distinct tokens; ``unk_token`` stands for every token not in it."""

    def __init__(self, tokens: Sequence[str], unk_token: str) -> None:
        self.tokens: list[str] = list(tokens)
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise RnnkitError("the vocabulary lists a token twice; each line of vocab.txt must be distinct")
        if unk_token not in self.index:
            raise RnnkitError(f"the vocabulary has no unknown token {unk_token!r}")
        self.unk_token = unk_token
        self.unk_id = self.index[unk_token]

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def id(self, token: str) -> int:
        return self.index.get(token, self.unk_id)

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        get, unk = self.index.get, self.unk_id
        return np.fromiter((get(t, unk) for t in tokens), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(escape(t) + "\n" for t in self.tokens), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, unk_token: str = UNKNOWN_TOKEN, size: int | None = None) -> Vocabulary:
        """Read ``vocab.txt``; with ``size``, the number of tokens its directory's manifest records."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RnnkitError(f"{path}: no such vocabulary file") from None
        except UnicodeDecodeError:
            raise RnnkitError(f"{path}: not a UTF-8 vocabulary file") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if size is not None and len(lines) != size:
            raise RnnkitError(f"{path} has {len(lines)} tokens but its directory's manifest says {size}; "
                              "it was changed or damaged")
        return cls([unescape(line) for line in lines], unk_token)


def rank_tokens(counts: np.ndarray, first_seen: np.ndarray) -> np.ndarray:
    """Token ids ordered most frequent first; ties go to the token seen first (``first_seen`` smaller).

    With ids given in order of first appearance this is exactly ``collections.Counter.most_common``,
    which is what the seed's ``nltk.FreqDist.most_common`` does.
    """
    return np.lexsort((first_seen, -counts.astype(np.int64)))


def build_vocabulary(token_lists: Iterable[Sequence[str]], size: int, unk_token: str = UNKNOWN_TOKEN,
                     reserved: Sequence[str] = ()) -> Vocabulary:
    """The ``size - 1`` most frequent tokens (``reserved`` ones first, always kept; ties to the
    token seen first; ``size`` 0 keeps every token), then ``unk_token``."""
    from collections import Counter

    counts: Counter[str] = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    for token in (*reserved, unk_token):
        counts.pop(token, None)
    room = None if size == 0 else max(size - 1 - len(reserved), 0)
    return Vocabulary([*reserved, *(t for t, _ in counts.most_common(room)), unk_token], unk_token)
