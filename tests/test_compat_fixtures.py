"""Model directories written by rnnkit 0.2.0 still load, and score as 0.2.0 scored them."""

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
