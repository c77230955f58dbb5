"""A retrieval chatbot: each answer is the response of a repository that a ranker scores best
against the last turns of the conversation, written as the ranker's training contexts were (the
UDC's layout: each utterance ends with ``__eou__``, each turn with ``__eot__``) — but never one
that repeats a turn of the conversation, the person's or its own, nor one that says again what
one of its own answers said (``rnnkit.rank.similar``).

    from rnnkit.rank.chat import Conversation
    bot = Conversation(rnnkit.load("chitchat-ranker"), training_responses("chitchat"))
    bot.reply("hi! how are you?")          # the ranked responses, best first

The CLI's conversation, ``/chat`` and the served page's chat all answer through ``answer``: the
same turns give the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.options import text_argument, texts_argument
from rnnkit.rank.build import EOT, EOU
from rnnkit.rank.model import Ranker
from rnnkit.rank.similar import content_words, repeats, says_again, word_sets

REMEMBERED = 16  # the last turns of a conversation a bot reads: the page sends no more, /chat reads no more
SEARCHED = (16, 256)  # beyond ``top``, the best responses looked through for ones that repeat nothing, then more


def as_turn(text: str) -> str:
    """A turn as a context holds it: its utterance, then the two markers."""
    said = " ".join(text.split())
    if not said:
        raise RnnkitError("an empty turn; say something")
    return f"{said} {EOU} {EOT}"


def plain(response: str) -> str:
    """A repository response without its ``__eou__`` markers: what the bot says."""
    return " ".join(u.strip() for u in response.split(EOU) if u.strip())


def turns_of(context: str) -> list[str]:
    """A context in the UDC's layout as plain turns, oldest first."""
    return [plain(t) for t in context.split(EOT) if plain(t)]


def context_of(turns: Sequence[str], context_turns: int = 4) -> str:
    """The last ``context_turns`` turns (plain text, the person's and the bot's in turn, each as it
    was said) as a context."""
    if not turns:
        raise RnnkitError("give at least one turn")
    return " ".join(as_turn(t) for t in turns[-context_turns:])


def shortlist(top: int) -> int:
    """The most responses an answer may rank to find ``top`` that repeat nothing."""
    return top + SEARCHED[-1]


class Conversation:
    """One conversation with a ranker over a repository of responses."""

    def __init__(self, ranker: Ranker, repository: Sequence[str], context_turns: int = 4) -> None:
        if context_turns < 1:
            raise RnnkitError("--context-turns must be at least 1")
        self.ranker, self.repository, self.context_turns = ranker, tuple(repository), context_turns
        self.turns: list[str] = []  # plain text as said: the person's and the bot's in turn

    def reply(self, text: str, top: int = 1) -> list[dict[str, Any]]:
        """The ``top`` best responses to the conversation after ``text``, best first (each with its
        ``text`` as the repository has it, ``plain`` without markers, and ``score``), none repeating
        a turn of the conversation; the best one becomes the bot's turn."""
        turns = [*self.turns, " ".join(text_argument("text", text).split())]  # refused before anything is ranked
        ranked = answer(self.ranker, self.repository, turns, top, self.context_turns)
        self.turns = turns + [ranked[0]["plain"]]
        return ranked


def answer(ranker: Ranker, repository: Sequence[str], turns: Sequence[str], top: int = 1,
           context_turns: int = 4) -> list[dict[str, Any]]:
    """The ``top`` best responses of ``repository`` after ``turns`` (plain text, the person's last,
    the bot's every other one before it), best first, leaving out every response that
    near-duplicates one of the last ``REMEMBERED`` turns (neither an echo of the person nor the
    bot's own answer again, however punctuated) or says again what one of the bot's answers said
    (its own loop on one topic)."""
    if top < 1:
        raise RnnkitError("--top must be at least 1")
    turns = texts_argument("turns", turns)[-REMEMBERED:]
    context, earlier = context_of(turns, context_turns), word_sets(turns)
    own = [content_words(t) for t in turns[-2::-2]]
    for extra in SEARCHED:
        ranked = ranker.rank_repository(context, repository, top=min(top + extra, len(repository)))
        kept = [{**r, "plain": plain(r["text"])} for r in ranked]
        kept = [r for r in kept if not (repeats(r["plain"], earlier) or says_again(r["plain"], own))][:top]
        if len(kept) == top or len(ranked) == len(repository):
            break
    if not kept:
        raise RnnkitError("the repository holds no response that does not repeat the conversation")
    return kept
