"""A retrieval chatbot: each answer is the response of a repository that a ranker scores best
against the last turns of the conversation, written as the ranker's training contexts were (the
UDC's layout: each utterance ends with ``__eou__``, each turn with ``__eot__``).

    from rnnkit.rank.chat import Conversation
    bot = Conversation(rnnkit.load("chitchat-ranker"), training_responses("chitchat"))
    bot.reply("hi! how are you?")          # the ranked responses, best first
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.rank.build import EOT, EOU
from rnnkit.rank.model import Ranker


def as_turn(text: str) -> str:
    """What a person typed, as a turn of a context: its utterance, then the two markers."""
    said = " ".join(text.split())
    if not said:
        raise RnnkitError("an empty turn; say something")
    return f"{said} {EOU} {EOT}"


def plain(response: str) -> str:
    """A repository response without its ``__eou__`` markers: what the bot says."""
    return " ".join(u.strip() for u in response.split(EOU) if u.strip())


def context_of(turns: Sequence[str], context_turns: int = 4) -> str:
    """The last ``context_turns`` turns (plain text, the person's and the bot's in turn) as a context."""
    if not turns:
        raise RnnkitError("give at least one turn")
    return " ".join(as_turn(t) for t in turns[-context_turns:])


class Conversation:
    """One conversation with a ranker over a repository of responses."""

    def __init__(self, ranker: Ranker, repository: Sequence[str], context_turns: int = 4) -> None:
        if context_turns < 1:
            raise RnnkitError("--context-turns must be at least 1")
        self.ranker, self.repository, self.context_turns = ranker, tuple(repository), context_turns
        self.turns: list[str] = []  # as the context has them: the person's and the bot's in turn
        self.said: set[str] = set()  # the bot's answers so far: it does not say one twice

    def reply(self, text: str, top: int = 1) -> list[dict[str, Any]]:
        """The ``top`` best responses to the conversation after ``text``, best first (each with its
        ``text`` as the repository has it, ``plain`` without markers, and ``score``), leaving out
        what the bot has said already; the best one becomes the bot's turn."""
        turns = [*self.turns, as_turn(text)]
        ranked = answer(self.ranker, self.repository, " ".join(turns[-self.context_turns:]), top, self.said)
        self.turns = turns + [f"{ranked[0]['text']} {EOT}"]
        self.said.add(ranked[0]["text"])
        return ranked


def answer(ranker: Ranker, repository: Sequence[str], context: str, top: int = 1,
           said: Collection[str] = ()) -> list[dict[str, Any]]:
    """The ``top`` best responses of ``repository`` to ``context`` (in the UDC's layout), best
    first, but for those in ``said``."""
    if top < 1:
        raise RnnkitError("--top must be at least 1")
    if len(repository) <= len(said):
        raise RnnkitError("the repository holds no response left to answer with")
    ranked = ranker.rank_repository(context, repository, top=min(top + len(said), len(repository)))
    return [{**r, "plain": plain(r["text"])} for r in ranked if r["text"] not in said][:top]
