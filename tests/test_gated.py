"""GRU and LSTM: gradient checks, the engines' agreement, training and use, the tutorial's GRU,
and the vanishing-gradient measurement."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnkit
from rnnkit import RnnkitError
from rnnkit.analysis.vanishing import measure, state_gradients, windows
from rnnkit.lm import train
from rnnkit.lm.model import evaluate_model
from rnnkit.models.numpy import gradient_check, initialize
from tests.conftest import break_gradient

X = np.array([[0, 1, 2, 3, 4], [5, 6, 7, 0, 0]])
Y = (X + 1) % 12
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=bool)
SHAPES = [dict(layers=1), dict(layers=2), dict(layers=2, tie=True, embedding=6), dict(layers=2, bidirectional=True),
          dict(layers=3, embedding=4),
          # the output layer reads the top states projected to 4 (tied: so is the embedding), full or adaptive
          dict(layers=2, projection=4, tie=True), dict(layers=1, projection=4), dict(projection=4, cutoffs=(6,))]


def _state(model, seed=2):
    return np.random.RandomState(seed).uniform(-0.5, 0.5, model.initial_state(2).shape)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("options", SHAPES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_gradient_check(cell, options):
    model = initialize(cell, 12, 6, rng=np.random.RandomState(1), **options)
    state = None if options.get("bidirectional") else _state(model)
    errors = gradient_check(model, X, Y, MASK, state=state)
    assert max(errors.values()) < 1e-4, errors
    assert set(errors) == set(model.params)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_gradcheck_command(run_cli, cell):
    status, out, _ = run_cli("gradcheck", "--cell", cell, "--layers", "2", "--json")
    report = json.loads(out)
    assert status == 0 and report["passed"] and report["cell"] == cell
    assert max(report["max_relative_error"].values()) < 1e-2


def test_gradient_check_catches_a_wrong_gradient():
    model = initialize("lstm", 12, 6, rng=np.random.RandomState(1))
    break_gradient(model, "W")
    assert gradient_check(model, X, Y, MASK)["W"] > 1e-3


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("options", SHAPES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_torch_agrees_with_numpy(cell, options):
    torch = pytest.importorskip("torch")
    from rnnkit.models.torch import build

    for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-4)):
        model = initialize(cell, 12, 6, rng=np.random.RandomState(1), dtype=dtype, **options)
        state = None if options.get("bidirectional") else _state(model).astype(dtype)
        loss, grads = model.loss_and_grads(X, Y, MASK, h=state)
        fast = build(model.config, model.params)
        t_loss, last = fast(torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(MASK),
                                 None if state is None else torch.from_numpy(state))
        t_loss.backward()
        t_grads = {fast.canonical(n): p.grad.numpy() for n, p in fast.named_parameters()}
        assert set(t_grads) == set(grads)
        assert abs(t_loss.item() - loss) <= tolerance * abs(loss)
        for name, grad in grads.items():
            assert np.abs(t_grads[name] - grad).max() <= tolerance * np.abs(grad).max(), name
        if state is not None:
            assert np.abs(last.detach().numpy() - model.forward(X, h=state).final).max() <= tolerance
        assert set(fast.numpy_params()) == set(model.params)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gated")
    rng = np.random.default_rng(0)
    lines = ["the cat sat on the mat .", "the dog sat on the log .", "a cat saw a dog .", "the dog saw the cat ."]
    (tmp / "t.txt").write_text("\n".join(rng.choice(lines, 500)) + "\n", encoding="utf-8")
    return rnnkit.prepare(tmp / "t.txt", tmp / "c", lines=True, valid_fraction=0.1, seed=1, vocab_size=0)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_train_score_generate(corpus, tmp_path, engine, cell):
    if engine == "torch":
        pytest.importorskip("torch")
    summary = train(corpus, tmp_path / "m", engine=engine, cell=cell, hidden=16, layers=2, batch_size=4, bptt=10,
                    lr=0.01, epochs=2, dropout=0.1, log=lambda _: None)
    assert summary["valid_perplexity"] < 4.0  # from 13 (the vocabulary) untrained
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["cell"] == cell and config["model"]["tie"]
    assert config["tokens"]["sentence_follows"] == "sentence_end"
    model = rnnkit.load(tmp_path / "m", engine=engine)
    good, bad = model.score(["the cat sat on the mat .", "mat the on sat cat the ."])
    assert good.logprob > bad.logprob
    for sample in model.generate(n=3, seed=0, min_length=3):
        assert "UNKNOWN_TOKEN" not in sample["tokens"] and "SENTENCE_START" not in sample["tokens"]
    evaluated = evaluate_model(tmp_path / "m", corpus, engine=engine)  # in float32
    # The trainer evaluates in its precision: bf16 autocast where the CPU has it (within 2e-3 nats
    # on this tiny model; 3e-5 on the ten-minute models, benchmarks/eval_precision.py).
    tolerance = {"abs": 2e-3} if summary["precision"] == "bf16" else {"rel": 1e-5}
    assert evaluated["loss"] == pytest.approx(summary["valid_loss"], **tolerance)


def test_both_engines_score_a_gated_model_alike(corpus, tmp_path):
    pytest.importorskip("torch")
    train(corpus, tmp_path / "m", engine="numpy", cell="gru", hidden=8, epochs=1, log=lambda _: None)
    texts = ["the cat sat .", "a dog saw the cat on the mat ."]
    a = [s.logprob for s in rnnkit.load(tmp_path / "m", engine="numpy").score(texts)]
    b = [s.logprob for s in rnnkit.load(tmp_path / "m", engine="torch").score(texts)]
    assert np.allclose(a, b, rtol=1e-4)


def test_the_engines_take_the_same_adam_steps(corpus, tmp_path):
    pytest.importorskip("torch")
    options = dict(cell="lstm", hidden=8, layers=2, batch_size=4, bptt=6, max_steps=25, dtype="float64",
                   dropout=0.0, log=lambda _: None)
    train(corpus, tmp_path / "n", engine="numpy", **options)
    train(corpus, tmp_path / "t", engine="torch", **options)
    a, b = (rnnkit.load(tmp_path / d, engine="numpy").files.params for d in ("n", "t"))
    for name in a:
        assert np.allclose(a[name], b[name], atol=1e-6), name  # Adam magnifies rounding near zero gradients


def test_train_refuses_a_bidirectional_model(run_cli, corpus, tmp_path):
    status, _, err = run_cli("train", corpus.path, "--out", tmp_path / "m", "--bidirectional")
    assert status == 2 and "cannot be a left-to-right language model" in err
    assert not (tmp_path / "m").exists()


def test_tie_needs_matching_sizes(run_cli, corpus, tmp_path):
    status, _, err = run_cli("train", corpus.path, "--out", tmp_path / "m", "--tie", "--hidden", "16",
                             "--embedding", "8")
    assert status == 2 and "--tie needs the embedding as wide as the hidden layer" in err


# ------------------------------------------------------------------------------ the tutorial's GRU

def _tutorial_gru_by_hand(p, sentence):
    """The tutorial's forward_prop_step, one token at a time, as its code reads."""
    def hard_sigmoid(v):
        return np.clip(0.2 * v + 0.5, 0, 1)

    s1, s2 = np.zeros(p["E"].shape[0]), np.zeros(p["E"].shape[0])
    outputs = []
    for x_t in sentence:
        x_e = p["E"][:, x_t]
        z1 = hard_sigmoid(p["U"][0].dot(x_e) + p["W"][0].dot(s1) + p["b"][0])
        r1 = hard_sigmoid(p["U"][1].dot(x_e) + p["W"][1].dot(s1) + p["b"][1])
        c1 = np.tanh(p["U"][2].dot(x_e) + p["W"][2].dot(s1 * r1) + p["b"][2])
        s1 = (np.ones_like(z1) - z1) * c1 + z1 * s1
        z2 = hard_sigmoid(p["U"][3].dot(s1) + p["W"][3].dot(s2) + p["b"][3])
        r2 = hard_sigmoid(p["U"][4].dot(s1) + p["W"][4].dot(s2) + p["b"][4])
        c2 = np.tanh(p["U"][5].dot(s1) + p["W"][5].dot(s2 * r2) + p["b"][5])
        s2 = (np.ones_like(z2) - z2) * c2 + z2 * s2
        o = p["V"].dot(s2) + p["c"]
        outputs.append(np.exp(o - o.max()) / np.exp(o - o.max()).sum())
    return np.array(outputs)


@pytest.fixture
def tutorial_gru(tmp_path):
    rng = np.random.default_rng(3)
    words = ["<MASK/>", "UNKNOWN_TOKEN", "SENTENCE_START", "SENTENCE_END", "the", "cat", "sat", "on", "mat", "."]
    C, H = len(words), 5
    params = {"E": rng.normal(0, 1, (H, C)), "U": rng.normal(0, 1, (6, H, H)), "W": rng.normal(0, 1, (6, H, H)),
              "b": rng.normal(0, 1, (6, H)), "V": rng.normal(0, 1, (C, H)), "c": rng.normal(0, 1, C)}
    np.savez(tmp_path / "gru.npz", **params)
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return params, words, tmp_path


def test_tutorial_gru_import_scores_as_its_code_computes(tutorial_gru, run_cli):
    params, words, tmp = tutorial_gru
    status, _, err = run_cli("import-tutorial", tmp / "gru.npz", "--vocab", tmp / "vocab.txt", "--out", tmp / "m")
    assert status == 0, err
    model = rnnkit.load(tmp / "m")
    assert model.engine.name == "numpy" and model.config.cell == "tutorial-gru"
    sentence = "the cat sat on the mat ."
    ids = [words.index(w) for w in ["SENTENCE_START", *sentence.split()]]
    expected = _tutorial_gru_by_hand(params, ids)
    targets = ids[1:] + [words.index("SENTENCE_END")]
    by_hand = float(np.log(expected[np.arange(len(targets)), targets]).sum())
    assert model.score([sentence])[0].logprob == pytest.approx(by_hand, rel=1e-12)
    assert np.allclose(model.next_token_probs("the cat"), expected[2], atol=1e-12)
    for sample in model.generate(n=5, seed=1, min_length=1, max_length=20):
        assert not {"<MASK/>", "UNKNOWN_TOKEN", "SENTENCE_START"} & set(sample["tokens"])


def test_tutorial_gru_import_errors(tutorial_gru, run_cli):
    params, words, tmp = tutorial_gru
    status, _, err = run_cli("import-tutorial", tmp / "gru.npz", "--vocab-from", tmp, "--out", tmp / "m")
    assert status == 2 and "give its vocabulary with --vocab FILE" in err
    (tmp / "short.txt").write_text("\n".join(words[:-1]) + "\n", encoding="utf-8")
    status, _, err = run_cli("import-tutorial", tmp / "gru.npz", "--vocab", tmp / "short.txt", "--out", tmp / "m")
    assert status == 2 and "has 9 tokens but the weights are for 10" in err
    np.savez(tmp / "bad.npz", **{**params, "U": params["U"][:3]})
    status, _, err = run_cli("import-tutorial", tmp / "bad.npz", "--vocab", tmp / "vocab.txt", "--out", tmp / "m")
    assert status == 2 and "U is (3, 5, 5), expected (6, 5, 5)" in err
    assert not (tmp / "m").exists()
    assert run_cli("import-tutorial", tmp / "gru.npz", "--vocab", tmp / "vocab.txt", "--out", tmp / "m")[0] == 0
    with pytest.raises(RnnkitError, match="numpy engine only"):
        rnnkit.load(tmp / "m", engine="torch")


# ------------------------------------------------------------------------------ vanishing gradients

def test_vanishing_tanh_rnn_fades_fast_and_lstm_less():
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "tinyshakespeare.txt"  # real text when it is here; else a made-up one
    text = path.read_text(encoding="utf-8")[:200_000] if path.exists() else \
        " ".join(np.random.default_rng(1).choice(["to", "be", "or", "not", "the", "king", "is", "dead."], 20_000))
    alphabet = sorted(set(text))
    tokens = np.array([alphabet.index(c) for c in text])
    sequences = windows(tokens, 40, 24, np.random.default_rng(0))
    results = {cell: measure(initialize(cell, len(alphabet), 64, rng=np.random.RandomState(0)), cell, sequences, 30)
               for cell in ("rnn", "gru", "lstm")}
    rnn, lstm = results["rnn"].norms, results["lstm"].norms
    assert rnn[20] < 1e-2 * rnn[1]  # geometric decay: far below
    assert lstm[20] / lstm[1] > 10 * rnn[20] / rnn[1]  # the LSTM keeps far more of it
    assert results["rnn"].largest_singular_value < 1.5


def test_state_gradients_match_finite_differences():
    """The norm at k = 4 is that of ∂L_4/∂s_0, found here by nudging the state after the first step."""
    x, y = X[:1], Y[:1]
    for cell in ("rnn", "gru", "lstm"):
        model = initialize(cell, 12, 6, rng=np.random.RandomState(1))
        norm = state_gradients(model, x, y, np.ones_like(x, dtype=bool), 4)[0, 4]
        _, after_first = model.step(x[:, 0], model.initial_state(1))

        def loss_from(h):
            for t in range(1, 5):
                probs, h = model.step(x[:, t], h)
            return -np.log(probs[0, y[0, 4]])

        grad = np.zeros(6)
        for i in range(6):
            for sign in (1, -1):
                h = after_first.copy()
                h[(0, -1, 0, i) if cell == "lstm" else (-1, 0, i)] += sign * 1e-6  # an LSTM's h, not its cell
                grad[i] += sign * loss_from(h) / 2e-6
        assert norm == pytest.approx(np.linalg.norm(grad), rel=1e-5), cell


def test_vanishing_command_plot_and_json(run_cli, tmp_path):
    status, out, err = run_cli("vanishing", "--distance", "20", "--windows", "4", "--hidden", "16",
                               "--plot", tmp_path / "v.png", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert [r["cell"] for r in report["results"]] == ["rnn", "gru", "lstm"]
    assert all(len(r["norms"]) == 21 for r in report["results"])
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"


def test_vanishing_shows_relu_exploding_and_clip(run_cli):
    status, out, _ = run_cli("vanishing", "--cell", "rnn", "--activation", "relu", "--init-scale", "4",
                             "--distance", "10", "--windows", "4", "--clip", "5", "--json")
    result = json.loads(out)["results"][0]
    assert status == 0 and result["norms"][10] > 100 * result["norms"][0]  # exploding
    assert result["gradient_norm"] > 5 and result["clipped_gradient_norm"] == 5


def test_vanishing_on_trained_models_with_data(run_cli, corpus, tmp_path):
    train(corpus, tmp_path / "m", engine="numpy", cell="gru", hidden=8, epochs=1, log=lambda _: None)
    status, out, err = run_cli("vanishing", tmp_path / "m", "--data", corpus.path, "--distance", "8", "--json")
    assert status == 0, err
    [result] = json.loads(out)["results"]
    assert result["cell"] == "gru" and len(result["norms"]) == 9
    assert result["gate_singular_values"].keys() == {"r", "z", "n"}


# ------------------------------------------------------------------------------ stream evaluation

def test_stream_evaluation_predicts_every_token_once():
    from rnnkit.data.batching import stream_evaluation_batches

    tokens = np.arange(1000) % 97
    for rows, window in ((10, 256), (7, 5), (1, 1000), (2000, 3)):
        batches = list(stream_evaluation_batches(tokens, rows, window))
        pairs = sorted((int(x), int(y)) for b in batches for x, y in zip(b.x[b.mask], b.y[b.mask]))
        assert pairs == sorted(zip(tokens[:-1].tolist(), tokens[1:].tolist()))
        # within a row, each window continues where the last one stopped
        joined = np.concatenate([b.x for b in batches], axis=1)
        assert all((np.diff(row[mask]) % 97 == 1).all() for row, mask in
                   zip(joined, np.concatenate([b.mask for b in batches], axis=1)))


def test_stream_training_windows_are_full_and_the_last_takes_the_remainder():
    """Every token of each row once, in windows of bptt steps; what is left joins the last window
    (word_language_model's kjv-lm setting would end its epoch on a step of 2 tokens a row)."""
    from rnnkit.data.batching import stream_batches, stream_windows

    tokens = np.arange(672742)
    batches = list(stream_batches(tokens, 20, 35))
    widths = [b.x.shape[1] for b in batches]
    assert len(batches) == stream_windows(tokens, 20, 35) == 961
    assert set(widths[:-1]) == {35} and widths[-1] == 37
    length = (len(tokens) - 1) // 20
    assert np.array_equal(np.concatenate([b.x for b in batches], axis=1), tokens[:20 * length].reshape(20, length))
    assert np.array_equal(np.concatenate([b.y for b in batches], axis=1)[:, -1], (np.arange(1, 21) * length))
    resumed = list(stream_batches(tokens, 20, 35, start=959))
    assert [b.x.shape[1] for b in resumed] == [35, 37] and np.array_equal(resumed[-1].x, batches[-1].x)
    short = list(stream_batches(np.arange(21), 4, 35))  # a stream shorter than one window: one window
    assert len(short) == stream_windows(np.arange(21), 4, 35) == 1 and short[0].x.shape == (4, 5)


def test_stream_evaluation_in_parts_matches_one_stream(corpus, tmp_path, monkeypatch):
    import rnnkit.lm.evaluate as evaluation

    train(corpus, tmp_path / "m", engine="numpy", cell="lstm", hidden=8, epochs=1, log=lambda _: None)
    parts = evaluate_model(tmp_path / "m", corpus, engine="numpy")
    monkeypatch.setattr(evaluation, "_EVAL_ROWS", 1)
    whole = evaluate_model(tmp_path / "m", corpus, engine="numpy")
    assert parts["tokens"] == whole["tokens"] == corpus.num_tokens("valid") + corpus.num_sentences("valid")
    assert parts["loss"] == pytest.approx(whole["loss"], rel=0.01)


def test_a_projection_s_gradient_is_checked_and_its_options_are_refused_where_they_cannot_work():
    model = initialize("lstm", 12, 6, rng=np.random.RandomState(1), projection=3, tie=True)
    assert model.params["P"].shape == (3, 6) and model.params["E"].shape == (3, 12)  # tied: the embedding is 3 wide
    break_gradient(model, "P")
    assert gradient_check(model, X, Y, MASK)["P"] > 1e-3
    for options, message in ((dict(cell="rnn"), "for gru and lstm"), (dict(bidirectional=True), "for gru and lstm"),
                             (dict(tie=True, embedding=6), "as wide as the projection")):
        with pytest.raises(RnnkitError, match=message):
            initialize(options.pop("cell", "lstm"), 12, 6, projection=3, **options)
