"""The fast engine: agrees with the numpy reference, trains in both modes, resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import RnnkitError
from rnnkit.data.batching import pad_batch
from rnnkit.io.modeldir import load_model
from rnnkit.lm import train
from rnnkit.lm.model import evaluate_model
from rnnkit.models.numpy import initialize
from tests.conftest import resume_counted, shared_file

torch = pytest.importorskip("torch")
from rnnkit.models.torch import build  # noqa: E402


def _batch(vocab=50, seed=1):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, vocab, n) for n in (3, 9, 1, 6)]
    ys = [rng.integers(0, vocab, len(x)) for x in xs]
    x, mask = pad_batch(xs)
    y, _ = pad_batch(ys)
    return x, y, mask


@pytest.mark.parametrize("dtype,tolerance", [(np.float64, 1e-6), (np.float32, 1e-4)])
def test_torch_agrees_with_numpy(dtype, tolerance):
    reference = initialize("rnn", 50, 8, bptt_truncate=1000, rng=np.random.RandomState(0), dtype=dtype)
    fast = build(reference.config, reference.params)
    x, y, mask = _batch()
    expected_loss, expected = reference.loss_and_grads(x, y, mask)
    loss, _ = fast(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask))
    loss.backward()
    assert abs(loss.item() - expected_loss) <= tolerance * abs(expected_loss)
    for name in ("U", "V", "W"):
        got = getattr(fast, name).grad.numpy()
        assert np.abs(got - expected[name]).max() <= tolerance * np.abs(expected[name]).max()


def test_torch_agrees_with_numpy_from_a_carried_state():
    reference = initialize("rnn", 30, 6, bptt_truncate=1000, rng=np.random.RandomState(2))
    fast = build(reference.config, reference.params)
    x, y, mask = _batch(30, seed=4)
    h = np.random.default_rng(0).standard_normal((1, len(x), 6)) * 0.3
    expected_loss, expected = reference.loss_and_grads(x, y, mask, h=h)
    loss, _ = fast(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask), torch.from_numpy(h))
    loss.backward()
    assert abs(loss.item() - expected_loss) <= 1e-9 * abs(expected_loss)
    assert np.abs(fast.W.grad.numpy() - expected["W"]).max() <= 1e-9 * np.abs(expected["W"]).max()


@pytest.mark.parametrize("layers,embedding", [(2, None), (1, 6), (3, 5)])
def test_deep_and_embedded_models_agree_with_numpy(layers, embedding):
    reference = initialize("rnn", 30, 6, bptt_truncate=1000, layers=layers, embedding=embedding,
                                    rng=np.random.RandomState(5))
    fast = build(reference.config, reference.params)
    x, y, mask = _batch(30, seed=2)
    h = np.random.default_rng(1).standard_normal((layers, len(x), 6)) * 0.3
    expected_loss, expected = reference.loss_and_grads(x, y, mask, h=h)
    loss, _ = fast(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask), torch.from_numpy(h))
    loss.backward()
    assert abs(loss.item() - expected_loss) <= 1e-9 * abs(expected_loss)
    assert set(dict(fast.named_parameters())) == set(expected)
    for name, param in fast.named_parameters():
        assert np.abs(param.grad.numpy() - expected[name]).max() <= 1e-9 * np.abs(expected[name]).max()


def test_the_output_layer_under_bf16_keeps_its_bias():
    """Under bf16 autocast (bf16 probabilities, their sums in float32) a strong bias, half the words
    3 nats down, moves the loss and its gradient as in float32."""
    reference = initialize("gru", 30, 6, bptt_truncate=1000, rng=np.random.RandomState(3), dtype=np.float32)
    reference.params["c"][::2] = -3.0
    x, y, mask = _batch(30, seed=5)
    results = []
    for mixed in (False, True):
        fast = build(reference.config, reference.params)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            loss, _ = fast(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask))
        loss.backward()
        results.append((loss.item(), fast.c.grad.numpy().copy()))
    (exact, d_exact), (mixed, d_mixed) = results
    assert abs(mixed - exact) <= 0.01 * abs(exact)
    assert np.abs(d_mixed - d_exact).max() <= 0.02 * np.abs(d_exact).max()


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.9])
def test_dropout_keeps_the_asked_fraction_and_the_expectation(p):
    from rnnkit.models.torch.dropout import dropout

    torch.manual_seed(0)
    x = torch.ones(1000, 1001, requires_grad=True)  # an odd count: the last 64-bit draw is split
    out = dropout(x, p)
    kept = out != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.003  # about 7 standard deviations at 1e6 draws
    assert abs(out.mean().item() - 1.0) < 0.01
    scale = out[kept].unique()
    exact = 65536 / round((1 - p) * 65536)  # 1 / the kept fraction, to 1/65,536
    assert len(scale) == 1 and abs(scale.item() - exact) < 1e-6 * exact
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # the gradient goes through the kept elements, scaled alike
    torch.manual_seed(0)
    assert torch.equal(dropout(x, p), out)  # the same seed, the same mask
    assert dropout(x, 0.0) is x


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adam"])
def test_engines_take_the_same_steps(tmp_path, optimizer):
    corpus = _synthetic_corpus(tmp_path, sentences=300)
    results = {}
    for engine in ("numpy", "torch"):
        train(corpus, tmp_path / engine, recipe="seed", engine=engine, optimizer=optimizer, lr=0.01, hidden=8,
              batch_size=4,
              max_steps=20, clip=5.0, dtype="float64", bptt_truncate=1000, log=lambda _: None)
        results[engine] = load_model(tmp_path / engine).params
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(results["torch"][name], results["numpy"][name], rtol=1e-7, atol=1e-9)


def test_engines_decay_the_same_weights(tmp_path):
    corpus = _synthetic_corpus(tmp_path, sentences=300)
    results = {}
    for engine, decay in (("numpy", 0.0), ("numpy", 2.0), ("torch", 2.0)):
        train(corpus, tmp_path / f"{engine}{decay}", recipe="seed", engine=engine, optimizer="adam", lr=0.01, hidden=8,
              batch_size=4, max_steps=20, weight_decay=decay, dtype="float64", bptt_truncate=1000, log=lambda _: None)
        results[engine, decay] = load_model(tmp_path / f"{engine}{decay}").params
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(results["torch", 2.0][name], results["numpy", 2.0][name], rtol=1e-7, atol=1e-9)
        # 20 steps of 1 - 0.01 × 2: the decayed weights are smaller, as a whole
        shrunk = np.linalg.norm(results["numpy", 2.0][name]) / np.linalg.norm(results["numpy", 0.0][name])
        assert 0.6 < shrunk < 0.9


def test_weight_decay_shrinks_matrices_after_the_update_and_leaves_vectors():
    from rnnkit.models.numpy.optim import NumpyOptimizer

    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    NumpyOptimizer("sgd", weight_decay=0.1).apply(params, {"W": np.full((2, 2), 0.5), "b": np.full(2, 0.5)},
                                                   lr=0.1, scale=1.0)
    np.testing.assert_allclose(params["W"], (1 - 0.1 * 0.5) * (1 - 0.1 * 0.1))
    np.testing.assert_allclose(params["b"], 1 - 0.1 * 0.5)


def _synthetic_corpus(tmp_path, sentences=3000, seed=0):
    rng = np.random.default_rng(seed)
    subjects, verbs, objects = ["the cat", "a dog", "my friend", "the king"], ["saw", "loved", "met"], \
        ["the bird", "a fish", "the queen", "his horse"]
    lines = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} ." for _ in range(sentences)]
    path = tmp_path / "synthetic.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rnnkit.prepare(path, tmp_path / "synthetic", lines=True, valid_fraction=0.1, seed=seed)


def test_sentence_mode_lowers_perplexity_on_reddit(tmp_path):
    corpus = rnnkit.prepare(shared_file("reddit-comments-sample.csv"), tmp_path / "reddit", vocab_size=2000)
    summary = train(corpus, tmp_path / "m", recipe="seed", engine="torch", hidden=50, batch_size=8,
                    optimizer="adam", lr=0.005,
                    epochs=3, log=lambda _: None)
    first = json.loads((tmp_path / "m" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["valid_perplexity"] > 1500 and summary["valid_perplexity"] < 0.2 * first["valid_perplexity"]
    assert (tmp_path / "m" / "loss.png").stat().st_size > 1000


def test_stream_mode_lowers_perplexity_on_characters(tmp_path):
    corpus = rnnkit.prepare(shared_file("tinyshakespeare.txt"), tmp_path / "chars", level="char")
    summary = train(corpus, tmp_path / "m", recipe="seed", engine="torch", hidden=64, batch_size=32, bptt=32,
                    optimizer="adam",
                    lr=0.005, max_steps=150, evaluate_every=0.05, log=lambda _: None)
    metrics = [json.loads(line) for line in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    assert summary["mode"] == "stream" and metrics[0]["valid_perplexity"] > 50
    assert summary["valid_perplexity"] < 16


def test_evaluate_matches_training_and_engines_agree(tmp_path):
    corpus = _synthetic_corpus(tmp_path)
    summary = train(corpus, tmp_path / "m", recipe="seed", engine="torch", hidden=16, batch_size=16,
                    optimizer="adam", lr=0.01,
                    epochs=1, log=lambda _: None)
    by_torch = evaluate_model(tmp_path / "m", corpus, engine="torch")
    by_numpy = evaluate_model(tmp_path / "m", corpus, engine="numpy")
    assert abs(by_torch["loss"] - summary["valid_loss"]) < 1e-6
    assert abs(by_numpy["loss"] - by_torch["loss"]) < 1e-5 and by_numpy["tokens"] == by_torch["tokens"]
    expected_tokens = corpus.num_tokens("valid") + corpus.num_sentences("valid")  # words + sentence ends
    assert by_torch["tokens"] == expected_tokens
    stream = evaluate_model(tmp_path / "m", corpus, engine="torch", mode="stream")
    assert stream["tokens"] == expected_tokens


@pytest.mark.parametrize("engine,mode,cell", [("numpy", "sentence", "rnn"), ("torch", "sentence", "rnn"),
                                              ("torch", "stream", "rnn"), ("numpy", "stream", "rnn"),
                                              ("numpy", "stream", "lstm"), ("torch", "stream", "lstm"),
                                              ("torch", "sentence", "gru")])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, engine, mode, cell, steps_taken):
    corpus = _synthetic_corpus(tmp_path, sentences=400)
    # keep="last": the interrupted run also evaluated where it stopped, so its best may differ; the
    # trajectory may not
    options = dict(engine=engine, mode=mode, cell=cell, hidden=8, batch_size=4, optimizer="adam", lr=0.01, layers=2,
                   embedding=6, dropout=0.3, evaluate_every=0.1, keep="last", log=lambda _: None)
    train(corpus, tmp_path / "whole", recipe="seed", max_steps=60, **options)
    train(corpus, tmp_path / "parts", recipe="seed", max_steps=23, **options)
    resume_counted(tmp_path / "parts", steps_taken,
                   lambda: train(corpus, tmp_path / "parts", recipe="seed", max_steps=60, resume=True, **options))
    whole, parts = load_model(tmp_path / "whole").params, load_model(tmp_path / "parts").params
    assert all(np.array_equal(whole[k], parts[k]) for k in whole)


def test_resume_refuses_other_options(tmp_path):
    corpus = _synthetic_corpus(tmp_path, sentences=200)
    train(corpus, tmp_path / "m", recipe="seed", hidden=8, max_steps=5, log=lambda _: None)
    with pytest.raises(RnnkitError, match="different hidden"):
        train(corpus, tmp_path / "m", recipe="seed", hidden=9, max_steps=10, resume=True, log=lambda _: None)
    with pytest.raises(RnnkitError, match="no checkpoint"):
        train(corpus, tmp_path / "fresh", recipe="seed", hidden=8, resume=True, log=lambda _: None)
    train(corpus, tmp_path / "lstm", cell="lstm", hidden=8, max_steps=5, log=lambda _: None)
    with pytest.raises(RnnkitError, match=r"different forget_bias \(forget_bias=1.0\)"):
        train(corpus, tmp_path / "lstm", cell="lstm", hidden=8, forget_bias=0.0, max_steps=10, resume=True,
              log=lambda _: None)


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from rnnkit.lm.torch_engine import TorchEngine

    corpus = _synthetic_corpus(tmp_path, sentences=400)
    real_step, calls = TorchEngine.train_step, []

    def step_that_breaks(self, *args, **kwargs):  # a run whose loss turns NaN at its 15th step
        calls.append(1)
        loss, h = real_step(self, *args, **kwargs)
        return (float("nan") if len(calls) >= 15 else loss), h

    monkeypatch.setattr(TorchEngine, "train_step", step_that_breaks)
    with pytest.raises(RnnkitError, match="became nan at step 15.*last good checkpoint is kept"):
        train(corpus, tmp_path / "m", recipe="seed", engine="torch", hidden=8, batch_size=4, epochs=5,
              evaluate_every=0.1, log=lambda _: None)
    state = json.loads((tmp_path / "m" / "checkpoint" / "state.json").read_text())
    assert state["position"]["step"] == 9  # the evaluation (and checkpoint) every 9 steps
    assert not (tmp_path / "m" / "config.json").exists()  # no model from a diverged run


def _train_command(corpus, out, *extra, evaluate_every: str = "0.25"):
    return [sys.executable, "-m", "rnnkit", "train", str(corpus), "--out", str(out), "--engine", "torch",
            "--device", "cpu", "--hidden", "32", "--batch-size", "8", "--optimizer", "adam", "--lr", "0.01",
            "--max-steps", "2500", "--evaluate-every", evaluate_every, "--seed", "7", *extra]


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_identical_weights(tmp_path):
    corpus = _synthetic_corpus(tmp_path, sentences=8000)
    subprocess.run(_train_command(corpus.path, tmp_path / "whole"), check=True, capture_output=True)
    run = subprocess.Popen(_train_command(corpus.path, tmp_path / "killed"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    state_file = tmp_path / "killed" / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for a checkpoint past the start, then kill without warning
        if state_file.exists() and json.loads(state_file.read_text())["position"]["step"] > 0:
            break
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    # killed between the two renames of a checkpoint's swap, the previous one is what survives (and resumes)
    from rnnkit.fsutil import surviving_directory

    step = json.loads((surviving_directory(state_file.parent) / "state.json").read_text())["position"]["step"]
    assert 0 < step < 2500 and not (tmp_path / "killed" / "config.json").exists()
    left = sorted(p.name for p in (tmp_path / "killed").iterdir())
    subprocess.run(_train_command(corpus.path, tmp_path / "killed", "--resume"), check=True, capture_output=True)
    whole, resumed = load_model(tmp_path / "whole").params, load_model(tmp_path / "killed").params
    differing = [k for k in whole if not np.array_equal(whole[k], resumed[k])]
    # what a rare failure needs to be traced: where the run was killed and what it left
    assert not differing, f"resumed from step {step} (the kill left {left}); differ: {differing}"


def _sigterm_after_the_first_checkpoint(run: subprocess.Popen, model: Path) -> Path:
    """SIGTERM to ``run`` once it has written a checkpoint (its signal handlers are in place by then)."""
    state_file = model / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while not state_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    run.send_signal(signal.SIGTERM)
    return state_file


def test_sigterm_ends_a_program_that_trains_inside_except_exception(tmp_path):
    """``Interrupted`` was an ``Exception``: a script's ``except Exception`` around ``rnnkit.train``
    swallowed SIGTERM and carried on (and pytest, under ``timeout``, failed one test and ran on).
    Now the program ends by it, its checkpoint saved and the handlers it had restored."""
    corpus = _synthetic_corpus(tmp_path, sentences=8000)
    script = tmp_path / "script.py"
    script.write_text(f"""
import signal, sys
import rnnkit

mine = lambda signum, frame: None
signal.signal(signal.SIGINT, mine)
try:
    rnnkit.train({str(corpus.path)!r}, {str(tmp_path / "m")!r}, engine="torch", hidden=32, batch_size=8,
                 max_steps=100000, evaluate_every=10, progress=False, log=lambda line: None)
except Exception as e:
    print("swallowed", type(e).__name__)
finally:
    print("handler restored", signal.getsignal(signal.SIGINT) is mine, flush=True)
print("carried on")
""", encoding="utf-8")
    here = {**os.environ, "PYTHONPATH": str(Path(rnnkit.__file__).parents[1])}  # this rnnkit, not another installed
    run = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=here)
    state_file = _sigterm_after_the_first_checkpoint(run, tmp_path / "m")
    out, err = run.communicate(timeout=60)
    assert run.returncode != 0 and "swallowed" not in out and "carried on" not in out, (out, err)
    assert "handler restored True" in out and "Interrupted: stopped by signal 15" in err
    assert json.loads(state_file.read_text())["position"]["step"] > 0


def test_sigterm_saves_a_checkpoint_and_exits(tmp_path):
    corpus = _synthetic_corpus(tmp_path, sentences=8000)
    run = subprocess.Popen(_train_command(corpus.path, tmp_path / "m", evaluate_every="10"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state_file = _sigterm_after_the_first_checkpoint(run, tmp_path / "m")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and "--resume" in err and "Traceback" not in err
    state = json.loads(state_file.read_text())
    assert state["position"]["step"] > 0


def test_an_embedding_its_gradient_and_its_moments_are_stored_a_word_to_a_row():
    """``E`` (embedding × vocabulary) is held as its transpose, so that the lookup's gradient and the
    tied output layer's arrive in its layout; a checkpoint's moments come back in it too, and the
    model file still holds ``E`` in its canonical shape."""
    from rnnkit.data.batching import Batch
    from rnnkit.lm.config import LMConfig
    from rnnkit.lm.torch_engine import TorchEngine
    from rnnkit.models.schema import init_params

    config = LMConfig("lstm", 40, 8, tie=True)
    params = init_params(config, np.random.RandomState(0))
    engine = TorchEngine(config, params, optimizer="adam")
    x = np.random.default_rng(0).integers(0, 40, (3, 5))
    engine.train_step(Batch(x, x[:, ::-1].copy(), np.ones(x.shape, dtype=bool)), 0.01, 1 / x.size)
    E = engine.model.E
    assert E.shape == (8, 40) and E.t().is_contiguous()
    assert E.grad.stride() == E.stride()
    assert all(m.stride() == E.stride() for m in (engine.optimizer.state[E]["exp_avg"],
                                                  engine.optimizer.state[E]["exp_avg_sq"]))
    again = TorchEngine(config, engine.params(), optimizer="adam")
    again.load_state_arrays(engine.state_arrays(), steps=1)
    moment = again.optimizer.state[again.model.E]["exp_avg"]
    assert moment.stride() == E.stride() and torch.equal(moment, engine.optimizer.state[E]["exp_avg"])
    saved = engine.params()["E"]
    assert saved.shape == (8, 40) and saved.flags.c_contiguous and np.array_equal(saved, E.detach().numpy())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_stack_run_a_layer_at_a_time_is_the_stack(monkeypatch, cell):
    """In training on a CPU the layers run one at a time with rnnkit's dropout between them: with
    that dropout made the identity, outputs and last states are nn.LSTM's (nn.GRU's) own."""
    import rnnkit.models.torch.gated as gated
    from rnnkit.lm.config import LMConfig

    torch.manual_seed(0)
    rnn = gated.recurrence(LMConfig(cell, 20, 6, layers=3, dropout=0.4), torch.float64)
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    h = torch.randn(3, 2, 6, dtype=torch.float64)
    state = (h, torch.randn(3, 2, 6, dtype=torch.float64)) if cell == "lstm" else h
    monkeypatch.setattr(gated, "dropout", lambda x, p: x)
    ours, ours_last = gated.stacked(rnn.train(), x, state)
    rnn.dropout = 0.0
    theirs, theirs_last = rnn(x, state)
    assert torch.allclose(ours, theirs, atol=1e-12)
    for a, b in zip(*((ours_last, theirs_last) if cell == "lstm" else ((ours_last,), (theirs_last,)))):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-12)


def test_a_stream_run_with_sgd_is_pytorchs_textbook_training(tmp_path, monkeypatch):
    """`rnnkit train --mode stream --optimizer sgd --clip C` takes, step for step, the steps of the
    textbook loop (word_language_model's): nn.Embedding, nn.LSTM and nn.Linear from the same
    weights, the mean cross-entropy, the state carried and detached, clip_grad_norm_, p -= lr · grad."""
    import importlib

    import torch.nn.functional as F

    from rnnkit.data.batching import stream_batches, stream_tokens

    lm_train = importlib.import_module("rnnkit.lm.train")  # the module; rnnkit.lm.train is also its function
    corpus = _synthetic_corpus(tmp_path, sentences=200)
    start, drawn = {}, lm_train.init_params

    def remembered(config, rng):  # the run's initial weights, kept for the textbook model
        start.update(drawn(config, rng))
        return {name: value.copy() for name, value in start.items()}

    monkeypatch.setattr(lm_train, "init_params", remembered)
    lr, clip, steps, B, T = 1.5, 0.25, 6, 4, 7
    train(corpus, tmp_path / "m", engine="torch", cell="lstm", layers=2, hidden=8, embedding=6, tie=False,
          projection=0, dropout=0.0, forget_bias=0.0, mode="stream", bptt=T, batch_size=B, optimizer="sgd", lr=lr,
          clip=clip, max_steps=steps, dtype="float64", keep="last", log=lambda _: None)

    V = len(corpus.vocab)
    embed, lstm, out = torch.nn.Embedding(V, 6), torch.nn.LSTM(6, 8, 2, batch_first=True), torch.nn.Linear(8, V)
    model = torch.nn.ModuleList([embed, lstm, out]).double()
    with torch.no_grad():
        embed.weight.copy_(torch.from_numpy(start["E"].T))
        out.weight.copy_(torch.from_numpy(start["V"]))
        out.bias.copy_(torch.from_numpy(start["c"]))
        for k, suffix in enumerate(("", "2")):
            for theirs, ours in (("weight_ih", "U"), ("weight_hh", "W"), ("bias_ih", "bu"), ("bias_hh", "bw")):
                getattr(lstm, f"{theirs}_l{k}").copy_(torch.from_numpy(start[ours + suffix]))
    state = (torch.zeros(2, B, 8, dtype=torch.float64),) * 2
    for batch in list(stream_batches(stream_tokens(corpus, "train"), B, T))[:steps]:
        state = tuple(s.detach() for s in state)
        model.zero_grad()
        outputs, state = lstm(embed(torch.from_numpy(batch.x)), state)
        F.cross_entropy(out(outputs).reshape(-1, V), torch.from_numpy(batch.y).reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad

    ours = load_model(tmp_path / "m").params
    assert not np.allclose(ours["V"], start["V"])  # it trained
    assert np.allclose(ours["E"], embed.weight.detach().numpy().T, rtol=0, atol=1e-10)
    assert np.allclose(ours["V"], out.weight.detach().numpy(), rtol=0, atol=1e-10)
    assert np.allclose(ours["W2"], lstm.weight_hh_l1.detach().numpy(), rtol=0, atol=1e-10)
