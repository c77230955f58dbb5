"""The adaptive softmax: the hand-written backward against numerical gradients, torch's
``AdaptiveLogSoftmaxWithLoss`` against the numpy reference on the same weights, exact
probabilities, cutoffs from frequencies, and training, scoring and generating through it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnkit
from rnnkit import RnnkitError
from rnnkit.lm import train
from rnnkit.lm.config import LMConfig, frequency_cutoffs
from rnnkit.models.numpy import gradient_check, initialize
from tests.conftest import break_gradient

VOCAB = 14
CUTOFFS = (4, 9)  # the head: ids 0-3 and two cluster entries; clusters 4-8 and 9-13
X = np.array([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 0]])
Y = np.array([[1, 5, 9, 13, 2, 0], [4, 12, 3, 8, 0, 0]])  # every range of ids is a target
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=bool)


def _model(cell="lstm", seed=1, **options):
    model = initialize(cell, VOCAB, 16, cutoffs=CUTOFFS, rng=np.random.RandomState(seed), **options)
    rng = np.random.default_rng(seed)
    for name, value in model.params.items():  # away from the start's zero bias, so every term matters
        value += rng.uniform(-0.3, 0.3, value.shape)
    return model


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_gradient_check(cell, layers):
    model = _model(cell, layers=layers)
    state = np.random.RandomState(2).uniform(-0.5, 0.5, model.initial_state(2).shape)
    errors = gradient_check(model, X, Y, MASK, state=state)
    output = {"V", "c", "tail1.P", "tail1.V", "tail2.P", "tail2.V"}
    assert set(errors) == set(model.params) >= output
    assert max(errors.values()) < 1e-4, errors  # test_gated's bound for the recurrent layers (h = 1e-3)
    assert max(errors[name] for name in output) < 1e-6, errors


def test_gradient_check_catches_a_wrong_tail_gradient():
    model = _model()
    break_gradient(model, "tail2.P")
    assert gradient_check(model, X, Y, MASK, names=["tail2.P"])["tail2.P"] > 1e-3


def test_a_cluster_without_targets_gets_zero_gradients():
    model = _model()
    y = np.where(Y >= CUTOFFS[1], 0, Y)  # nothing in the second cluster
    _, grads = model.loss_and_grads(X, y, MASK)
    assert not grads["tail2.P"].any() and not grads["tail2.V"].any() and grads["tail1.V"].any()


def test_probabilities_are_exact_and_agree_with_the_target_log_probs():
    model = _model()
    probs = model.forward(X).probs
    assert probs.shape == (2, 6, VOCAB)
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-12)
    picked = np.take_along_axis(probs, Y[:, :, None], axis=2)[:, :, 0]
    assert np.allclose(np.log(picked), model.target_log_probs(X, Y), atol=1e-12)
    step_probs, _ = model.step(X[:, 0], model.initial_state(2))
    assert np.allclose(step_probs, probs[:, 0], atol=1e-12)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_torch_agrees_with_numpy_on_the_same_weights(cell):
    torch = pytest.importorskip("torch")
    from rnnkit.models.torch import build

    reference = _model(cell, layers=2)
    fast = build(reference.config, reference.params)
    assert isinstance(fast.adaptive, torch.nn.AdaptiveLogSoftmaxWithLoss)
    loss, grads = reference.loss_and_grads(X, Y, MASK)
    torch_loss, _ = fast(*(torch.from_numpy(a) for a in (X, Y, MASK)))
    torch_loss.backward()
    assert torch_loss.item() == pytest.approx(loss, rel=1e-12)
    torch_grads = {fast.canonical(name): p.grad.numpy() for name, p in fast.named_parameters()}
    assert set(torch_grads) == set(grads)
    for name in grads:
        assert np.allclose(torch_grads[name], grads[name], rtol=1e-9, atol=1e-12), name
    log_probs, _ = fast.logits(torch.from_numpy(X))
    assert np.allclose(np.exp(log_probs.detach().numpy()), reference.forward(X).probs, atol=1e-12)
    assert fast.params().keys() == reference.params.keys()


def test_config_refuses_what_it_cannot_build():
    for options, message in [(dict(tie=True, embedding=16), "no-tie"), (dict(cutoffs=(9, 4)), "rise strictly"),
                             (dict(cutoffs=(4, 14)), "at most 13"), (dict(cutoffs=(0,)), "rise strictly"),
                             (dict(cutoffs=(2, 4, 6, 8)), "hidden size of at least 256")]:
        with pytest.raises(RnnkitError, match=message):
            LMConfig("lstm", VOCAB, 16, **{"cutoffs": CUTOFFS, **options})
    with pytest.raises(RnnkitError, match="gru and lstm"):
        LMConfig("rnn", VOCAB, 16, cutoffs=CUTOFFS)
    saved = json.loads(json.dumps(LMConfig("gru", VOCAB, 16, cutoffs=CUTOFFS).to_dict()))
    assert LMConfig.from_dict(saved).cutoffs == CUTOFFS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adaptive")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    zipf = 1.0 / np.arange(1, 61)
    lines = [" ".join(rng.choice(words, rng.integers(3, 9), p=zipf / zipf.sum())) for _ in range(1500)]
    lines += ["the cat sat on the mat ."] * 300
    (tmp / "t.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rnnkit.prepare(tmp / "t.txt", tmp / "c", lines=True, valid_fraction=0.1, seed=1, vocab_size=0,
                          progress=False)


def test_frequency_cutoffs_put_most_tokens_in_the_head(corpus):
    cutoffs = frequency_cutoffs(corpus, width=64)
    counts = np.bincount(corpus.ids("train"), minlength=len(corpus.vocab))
    counts[corpus.end_id] += corpus.num_sentences("train")
    assert len(cutoffs) == 2 and 1 <= cutoffs[0] < cutoffs[1] < len(corpus.vocab)
    assert counts[:cutoffs[0]].sum() >= 0.9 * counts.sum() > counts[:cutoffs[0] - 1].sum()
    assert counts[:cutoffs[1]].sum() >= 0.98 * counts.sum()
    assert len(frequency_cutoffs(corpus, width=8)) == 1  # a second cluster would have no width left


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_train_score_generate(corpus, tmp_path, engine):
    if engine == "torch":
        pytest.importorskip("torch")
    summary = train(corpus, tmp_path / "m", engine=engine, softmax="adaptive", hidden=32, batch_size=8, bptt=10,
                    lr=0.01, epochs=2, log=lambda _: None)
    config = json.loads((tmp_path / "m" / "config.json").read_text())["model"]
    assert config["cutoffs"] == frequency_cutoffs(corpus, 32) and not config["tie"]
    assert summary["valid_perplexity"] < 0.5 * len(corpus.vocab)
    model = rnnkit.load(tmp_path / "m", engine=engine)
    good, bad = model.score(["the cat sat on the mat .", "mat the on sat cat the ."])
    assert good.logprob > bad.logprob
    assert all(sample["tokens"] for sample in model.generate(n=3, seed=0, min_length=2))


def test_both_engines_score_an_adaptive_model_alike(corpus, tmp_path):
    pytest.importorskip("torch")
    train(corpus, tmp_path / "m", engine="torch", softmax="adaptive", cutoffs=[5, 20], hidden=16, epochs=1,
          log=lambda _: None)
    texts = ["the cat sat .", "w1 w2 w40 w59 on the mat ."]
    a = [s.logprob for s in rnnkit.load(tmp_path / "m", engine="numpy").score(texts)]
    b = [s.logprob for s in rnnkit.load(tmp_path / "m", engine="torch").score(texts)]
    assert np.allclose(a, b, rtol=1e-4)


def test_resume_refuses_another_output_layer(run_cli, corpus, tmp_path):
    out = str(tmp_path / "m")
    assert run_cli("train", str(corpus.path), "--out", out, "--hidden", "16", "--max-steps", "3")[0] == 0
    status, _, err = run_cli("train", str(corpus.path), "--out", out, "--hidden", "16", "--max-steps", "6",
                             "--softmax", "adaptive", "--resume")
    assert status != 0 and "different tie, cutoffs" in err


def test_cli_errors(run_cli, corpus, tmp_path):
    for options, message in [(["--cutoffs", "5,x"], "expected ids separated by commas"),
                             (["--cutoffs", "5,10"], "--cutoffs is for --softmax adaptive"),
                             (["--softmax", "adaptive", "--tie"], "no-tie")]:
        status, _, err = run_cli("train", str(corpus.path), "--out", str(tmp_path / "m"), *options)
        assert status != 0 and message in err and "Traceback" not in err


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_a_served_adaptive_model_answers_as_the_model_does(corpus, tmp_path, engine):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    if engine == "torch":
        pytest.importorskip("torch")
    from fastapi.testclient import TestClient

    from rnnkit.serve import create_app, open_served

    train(corpus, tmp_path / "m", engine="numpy", softmax="adaptive", cutoffs=[5, 20], hidden=16, epochs=1,
          log=lambda _: None)
    texts = ["the cat sat .", "w1 w2 w40 w59 on the mat ."]
    expected = [s.logprob for s in rnnkit.load(tmp_path / "m", engine=engine).score(texts)]
    with TestClient(create_app({"lm": open_served(f"lm={tmp_path / 'm'}", engine=engine)})) as client:
        scored = client.post("/v1/models/lm/score", json={"sentences": texts, "per_token": True}).json()["results"]
        samples = client.post("/v1/models/lm/generate", json={"n": 3, "seed": 0, "min_length": 2}).json()["results"]
    assert [r["logprob"] for r in scored] == pytest.approx(expected, rel=1e-9)
    for result in scored:  # each token's probability is exact: together they make the sentence's
        assert sum(np.log(p["prob"]) for p in result["token_probs"]) == pytest.approx(result["logprob"], rel=1e-5)
    assert len(samples) == 3 and all(s["tokens"] for s in samples)
