"""When two turns say the same thing: their words, compared as sets.

A retrieval chatbot's worst habit is the echo (Fedorenko et al. 2017): the responses closest to a
context are the context's own words, so the best-scored answer to "do you have any pets?" is
"do you have any pets?", or, a turn later, "do you have any other pets?". Exact strings cannot
catch either. Here a text's *words* are its lower-cased letters and digits (apostrophes kept
inside a word, the UDC's ``__eou__``/``__eot__`` markers and all punctuation dropped), and two
texts are near-duplicates when their word sets' Jaccard similarity is at least ``NEAR``:
"Hi, how are you?" and "hi how are you" are one text; "do you have any other pets?" repeats
"do you have any pets?" (5 of 6 words); "i love dogs, do you?" does not (2 of 6).

A bot's own answers are held to more: once it has said "I'm studying computer science with an
emphasis in animation", "Computer science with an emphasis in animation, whats yours?" says it
again though most of their words differ. Two texts say the same thing when they share at least
``SAME_TOPIC[0]`` *content words* (words less English's stop words and contractions), and at
least ``SAME_TOPIC[1]`` of the smaller text's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NEAR = 0.5  # the Jaccard similarity of two word sets from which one text repeats the other
SAME_TOPIC = (2, 1 / 3)  # content words two texts share, in number and as a share of the smaller's: the same thing said

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_MARKER = re.compile(r"__eo[ut]__")


def words(text: str) -> list[str]:
    """A text's words in order: lower case, letters and digits, no punctuation, no markers."""
    return _WORD.findall(_MARKER.sub(" ", text.lower()))


def normalised(text: str) -> str:
    """One spelling for the texts that differ only in case, punctuation or spacing (a text of no
    words, an emoji alone, stays itself)."""
    return " ".join(words(text)) or " ".join(text.split())


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """The Jaccard similarity of two word sets (two empty sets are the same text)."""
    return len(a & b) / len(a | b) if a or b else 1.0


def repeats(text: str, earlier: Iterable[frozenset[str]]) -> bool:
    """Whether ``text`` near-duplicates any of the ``earlier`` word sets."""
    mine = frozenset(words(text))
    return any(similarity(mine, other) >= NEAR for other in earlier)


def word_sets(texts: Iterable[str]) -> list[frozenset[str]]:
    return [frozenset(words(t)) for t in texts]


def content_words(text: str) -> frozenset[str]:
    """The words that say what a text is about: its words less scikit-learn's English stop words
    and contractions ("i'm", "that's")."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(w for w in words(text) if w not in ENGLISH_STOP_WORDS and "'" not in w)


def says_again(text: str, earlier: Iterable[frozenset[str]]) -> bool:
    """Whether ``text`` says what one of the ``earlier`` content-word sets said (``SAME_TOPIC``)."""
    mine = content_words(text)
    least, share = SAME_TOPIC
    return any(len(mine & other) >= max(least, share * min(len(mine), len(other))) for other in earlier)


def deduplicated(texts: Iterable[str]) -> tuple[str, ...]:
    """The texts, one for each normalised spelling (the first met), in order: a chitchat
    repository holds dozens of "hi how are you"s that differ only in their punctuation."""
    kept: dict[str, str] = {}
    for text in texts:
        kept.setdefault(normalised(text), text)
    return tuple(kept.values())
