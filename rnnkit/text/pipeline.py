"""One text pipeline: lower-case (or not), then characters or word tokens — and back to text.

``prepare`` makes a corpus with it, and its settings are saved with the corpus (meta.json) and
with every model trained on it (config.json), so ``score`` and ``generate`` read and write text
exactly as the corpus was made.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.text.tokenize import Detokenizer, Level, SentenceSplitter, TokenizerName, WordTokenizer


@functools.cache
def word_tokenizer(kind: TokenizerName) -> WordTokenizer:
    """One tokenizer per kind and process: its memo of chunks is shared by every pipeline."""
    return WordTokenizer(kind)


@functools.cache
def sentence_splitter() -> SentenceSplitter:
    return SentenceSplitter()


@functools.cache
def detokenizer() -> Detokenizer:
    return Detokenizer()


@dataclass(frozen=True)
class TextPipeline:
    """``level`` word or char; ``tokenizer`` treebank (NLTK's ``word_tokenize`` tokens) or
    whitespace, for words; ``lowercase`` first."""

    level: Level = "word"
    tokenizer: TokenizerName | None = "treebank"
    lowercase: bool = True

    def __post_init__(self) -> None:
        if self.level not in ("word", "char"):
            raise RnnkitError(f"unknown level {self.level!r}; use word or char")
        if self.level == "char":
            object.__setattr__(self, "tokenizer", None)
        elif self.tokenizer not in ("treebank", "whitespace"):
            raise RnnkitError(f"unknown tokenizer {self.tokenizer!r}; use treebank or whitespace")

    @classmethod
    def create(cls, level: Level = "word", tokenizer: TokenizerName = "treebank",
               lowercase: bool | None = None) -> TextPipeline:
        """The defaults users expect: lower-case words, keep the case of characters."""
        return cls(level, tokenizer, level == "word" if lowercase is None else lowercase)

    def normalize(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def split(self, texts: Sequence[str]) -> list[list[str]]:
        """The tokens of each text, already normalized (word level: one sentence each)."""
        if self.level == "char":
            return [list(t) for t in texts]
        return word_tokenizer(self.tokenizer).tokenize_many(texts)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one sentence (or, for characters, one line)."""
        text = self.normalize(text)
        return list(text) if self.level == "char" else word_tokenizer(self.tokenizer).tokenize(text)

    def sentences(self, text: str, split_sentences: bool = True) -> list[list[str]]:
        """Word level: the tokens of each sentence of ``text`` (Punkt), or of the whole text as one;
        characters: the text's characters as one list."""
        text = self.normalize(text)
        if self.level == "char":
            return [list(text)]
        words = word_tokenizer(self.tokenizer)
        if not split_sentences:
            return [words.tokenize(text)]
        return [words.tokenize(s) for s in sentence_splitter().split(text) if s.strip()]

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Tokens → readable text: characters joined; words through NLTK's Treebank detokenizer
        (``do n't`` → ``don't``, no space before punctuation), the sentence and "I" capitalised."""
        if self.level == "char":
            return "".join(tokens)
        text = detokenizer().detokenize([("I" if t == "i" else t) for t in tokens])
        for i, c in enumerate(text):
            if c.isalpha():
                return text[:i] + c.upper() + text[i + 1:]
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextPipeline:
        """From a config.json's ``text`` section, or a meta.json (which holds more keys)."""
        return cls(data.get("level", "word"), data.get("tokenizer") or "treebank", bool(data.get("lowercase", True)))


def tokenize_text(text: str, *, level: Level = "word", tokenizer: TokenizerName = "treebank", lowercase: bool = True,
                  sentences: bool = True) -> list[list[str]]:
    """Tokens of ``text``: one list per sentence (word level, ``sentences=True``), else one list."""
    return TextPipeline(level, tokenizer, lowercase).sentences(text, sentences)


def join_tokens(tokens: Sequence[str], level: Level = "word") -> str:
    """Tokens as one printable line: spaces between words; for characters, ▁ stands for a space."""
    if level == "char":
        return " ".join("▁" if t == " " else ("\\n" if t == "\n" else t) for t in tokens)
    return " ".join(tokens)
