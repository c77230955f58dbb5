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


REMEMBERED = 16  # the last turns of a conversation a bot reads: the page sends no more, /chat reads no more


def bot_turns(turns: Sequence[str]) -> list[str]:
    """The bot's turns of a conversation whose last turn is the person's: every second one from the end."""
    return list(turns[-2::-2])


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
        self.said: set[str] = set()  # the bot's answers so far (as it said them): it does not say one twice

    def reply(self, text: str, top: int = 1) -> list[dict[str, Any]]:
        """The ``top`` best responses to the conversation after ``text``, best first (each with its
        ``text`` as the repository has it, ``plain`` without markers, and ``score``), leaving out
        what the bot has said already; the best one becomes the bot's turn."""
        turns = [*self.turns, as_turn(text)]
        ranked = answer(self.ranker, self.repository, " ".join(turns[-self.context_turns:]), top, self.said)
        self.turns = turns + [f"{ranked[0]['text']} {EOT}"]
        self.said.add(ranked[0]["plain"])
        return ranked


def answer(ranker: Ranker, repository: Sequence[str], context: str, top: int = 1,
           said: Collection[str] = ()) -> list[dict[str, Any]]:
    """The ``top`` best responses of ``repository`` to ``context`` (in the UDC's layout), best
    first, but for what the bot has ``said`` already (plain text: the CLI's conversation, the
    page's and /chat's alike)."""
    if top < 1:
        raise RnnkitError("--top must be at least 1")
    said = {" ".join(s.split()) for s in said}
    if len(repository) <= len(said):
        raise RnnkitError("the repository holds no response left to answer with")
    ranked = ranker.rank_repository(context, repository, top=min(top + len(said), len(repository)))
    ranked = [{**r, "plain": plain(r["text"])} for r in ranked]
    kept = [r for r in ranked if r["plain"] not in said][:top]
    if not kept:
        raise RnnkitError("the repository holds no response left to answer with")
    return kept
