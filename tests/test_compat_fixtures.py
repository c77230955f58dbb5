"""Model directories written by rnnkit 0.2.0 and 0.3.0 still load, and answer as those versions
answered: scores, rankings and translations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnkit

FIXTURES = Path(__file__).parent / "fixtures" / "models-0.2.0"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED["models"]))
def test_a_0_2_0_model_scores_as_it_did(name):
    expected = EXPECTED["models"][name]
    model = rnnkit.load(FIXTURES / name, engine="numpy")
    scores = model.score(EXPECTED["sentences"])
    assert [s.tokens for s in scores] == expected["tokens"]
    # float32 weights on the numpy engine: the same arithmetic as 0.2.0, to float32 precision
    assert [s.logprob for s in scores] == pytest.approx(expected["logprobs"], rel=1e-6)
    prefix = "the cat" if model.level == "word" else "the c"
    np.testing.assert_allclose(model.next_token_probs(prefix), expected["next_token_probs"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["rnn-seed", "lstm-stream", "gru-char"])
def test_a_0_2_0_model_runs_on_the_torch_engine(name):
    pytest.importorskip("torch")
    expected = EXPECTED["models"][name]
    scores = rnnkit.load(FIXTURES / name, engine="torch").score(EXPECTED["sentences"])
    assert [s.logprob for s in scores] == pytest.approx(expected["logprobs"], rel=1e-5)


FIXTURES_0_3 = Path(__file__).parent / "fixtures" / "models-0.3.0"
EXPECTED_0_3 = json.loads((FIXTURES_0_3 / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED_0_3["models"]))
def test_a_0_3_0_model_of_every_kind_answers_as_it_did(name):
    expected, e = EXPECTED_0_3["models"][name], EXPECTED_0_3
    model = rnnkit.load(FIXTURES_0_3 / name, engine="numpy")  # the one loader, whatever the kind
    assert model.config.kind == expected["kind"]
    if expected["kind"] == "lm":
        scores = model.score(e["sentences"])
        assert [s.tokens for s in scores] == expected["tokens"]
        assert [s.logprob for s in scores] == pytest.approx(expected["logprobs"], rel=1e-6)
        np.testing.assert_allclose(model.next_token_probs("the cat"), expected["next_token_probs"], rtol=1e-5,
                                   atol=1e-7)
    elif expected["kind"] == "ranker":
        ranked = model.rank(e["context"], e["candidates"])
        assert [r["text"] for r in ranked] == [r["text"] for r in expected["ranked"]]
        assert [r["score"] for r in ranked] == pytest.approx([r["score"] for r in expected["ranked"]], rel=1e-5)
    else:
        for beam in (1, 3):  # decoded as when the answers were recorded: the window then was (3, 10)
            got = model.decode(e["sources"], beam=beam, window=(3, 10))
            assert [t.output for t in got] == [t["output"] for t in expected[f"beam{beam}"]]
            assert [t.log_prob for t in got] == pytest.approx([t["log_prob"] for t in expected[f"beam{beam}"]],
                                                             rel=1e-5)
