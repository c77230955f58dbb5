"""The learning rate's decay over a run's budget (--decay): its shape, the steps' and the time's
budgets, exact resume mid-decay, and the defaults a --max-time chooses."""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import time

import numpy as np
import pytest

from rnnkit import RnnkitError
from rnnkit.io.modeldir import load_model
from rnnkit.lm import train
from rnnkit.lm.config import LONG_RUNS, SHORT_RUN, make_config
from rnnkit.lm.numpy_engine import NumpyEngine
from rnnkit.lm.train import LMTask
from rnnkit.trainer import Interrupted
from rnnkit.trainer.options import LoopOptions
from tests.conftest import resume_counted


def points(model):
    return [e for e in map(json.loads, (model / "metrics.jsonl").read_text().splitlines()) if "train_loss" in e]


def test_the_decays_run_from_the_whole_rate_to_zero():
    for decay, middle in (("none", 1.0), ("linear", 0.5), ("cosine", 0.5)):
        schedule = LoopOptions(lr=0.1, epochs=1.0, decay=decay)
        assert schedule.factor(0.0) == 1.0 and math.isclose(schedule.factor(0.5), middle)
        assert schedule.factor(1.0) == (1.0 if decay == "none" else 0.0) == schedule.factor(1.7)
    assert math.isclose(LoopOptions(lr=0.1, epochs=1.0, decay="cosine").factor(0.25), (1 + math.cos(math.pi / 4)) / 2)
    with pytest.raises(RnnkitError, match="--decay \\(decay=\\): 'step' is not one of auto, none, linear, cosine"):
        LoopOptions.make(lr=0.1, epochs=1.0, decay="step")


def test_a_linear_decay_spends_the_steps_budget(tmp_path, word_corpus):
    summary = train(word_corpus, tmp_path / "m", recipe="seed", hidden=8, lr=0.05, batch_size=4, max_steps=40,
                    evaluate_every=10, decay="linear", log=lambda _: None, progress=False)
    for point in points(tmp_path / "m"):  # the rate of the step after each point
        assert math.isclose(point["lr"], 0.05 * (1 - point["step"] / 40))
    assert summary["steps"] == 40 and summary["final_lr"] == 0.0


def test_with_max_time_the_rate_follows_the_clock(tmp_path, word_corpus):
    # (numpy: the budget counts the whole command, and importing torch cold can take a second of it)
    summary = train(word_corpus, tmp_path / "m", recipe="seed", hidden=8, lr=0.05, batch_size=4, epochs=1000,
                    max_time=1.5, evaluate_every=1000, decay="linear", engine="numpy", log=lambda _: None,
                    progress=False)
    rates = [p["lr"] for p in points(tmp_path / "m")]
    assert summary["stopped_by"] == "max_time" and len(rates) > 20
    assert rates == sorted(rates, reverse=True) and rates[0] > 0.04 and rates[-1] < 0.01
    assert summary["final_lr"] == 0.0  # the time is spent


def test_an_evaluation_that_spends_the_budget_ends_the_run(tmp_path, word_corpus, monkeypatch):
    real_evaluate, calls = LMTask.evaluate, []

    def second_one_slow(self):  # the evaluation at step 34 takes longer than the whole budget
        calls.append(1)
        if len(calls) == 2:
            time.sleep(2.5)
        return real_evaluate(self)

    monkeypatch.setattr(LMTask, "evaluate", second_one_slow)
    summary = train(word_corpus, tmp_path / "m", recipe="seed", hidden=8, batch_size=4, epochs=1000, max_time=2.0,
                    evaluate_every=0.5, engine="numpy", log=lambda _: None, progress=False)
    evaluated = [e["step"] for e in map(json.loads, (tmp_path / "m" / "metrics.jsonl").read_text().splitlines())
                 if "valid_loss" in e]
    # no step after it, and no second evaluation of the one step
    assert summary["stopped_by"] == "max_time" and evaluated == [0, 34] and summary["steps"] == 34 and len(calls) == 2


def test_a_run_stopped_mid_decay_resumes_exactly(tmp_path, word_corpus, monkeypatch, steps_taken):
    options = dict(recipe="seed", cell="lstm", hidden=8, lr=0.01, optimizer="adam", batch_size=4, max_steps=60,
                   evaluate_every=0.2, decay="cosine", keep="last", engine="numpy", log=lambda _: None,
                   progress=False)
    train(word_corpus, tmp_path / "whole", **options)
    real_step, calls = NumpyEngine.train_step, []

    def step_then_signal(self, *args, **kwargs):  # Ctrl-C during the 23rd step
        calls.append(1)
        if len(calls) == 23:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(NumpyEngine, "train_step", step_then_signal)
    with pytest.raises(Interrupted, match="stopped by signal 2 at step 23"):
        train(word_corpus, tmp_path / "parts", **options)
    monkeypatch.setattr(NumpyEngine, "train_step", real_step)
    resume_counted(tmp_path / "parts", steps_taken, lambda: train(word_corpus, tmp_path / "parts", resume=True, **options))
    whole, parts = load_model(tmp_path / "whole").params, load_model(tmp_path / "parts").params
    assert all(np.array_equal(whole[k], parts[k]) for k in whole)


def test_the_cli_takes_decay_and_refuses_an_unknown_one(tmp_path, word_corpus, run_cli):
    code, _, err = run_cli("train", str(word_corpus.path), "--out", str(tmp_path / "m"), "--decay", "step")
    assert code == 2 and "invalid choice: 'step'" in err and not (tmp_path / "m").exists()
    code, out, _ = run_cli("train", str(word_corpus.path), "--out", str(tmp_path / "m"), "--recipe", "seed", "--hidden", "8",
                           "--max-steps", "12", "--decay", "linear", "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["final_lr"] == 0.0


def test_weight_decay_out_of_range_is_one_line_and_writes_nothing(tmp_path, word_corpus, run_cli):
    code, _, err = run_cli("train", str(word_corpus.path), "--out", str(tmp_path / "m"), "--weight-decay", "-1")
    assert code == 2 and "too small" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "m").exists()
    with pytest.raises(RnnkitError, match="below 1/--lr"):  # a step would flip the weights' sign
        train(word_corpus, tmp_path / "m", lr=0.5, weight_decay=2.0, log=lambda _: None)
    assert not (tmp_path / "m").exists()


@pytest.mark.slow  # three trainings
def test_rnnkit_max_steps_caps_every_training_whatever_the_command_says(tmp_path, word_corpus, run_cli,
                                                                       monkeypatch):
    monkeypatch.setenv("RNNKIT_MAX_STEPS", "3")
    code, out, _ = run_cli("train", str(word_corpus.path), "--out", str(tmp_path / "m"), "--recipe", "seed", "--hidden",
                           "8", "--max-steps", "50", "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["steps"] == 3
    logged = []
    summary = train(word_corpus, tmp_path / "p", recipe="seed", hidden=8, max_time=600, log=logged.append,
                    progress=False)  # from Python, with a budget of time alone: still 3 steps
    assert summary["steps"] == 3 and any("RNNKIT_MAX_STEPS=3: at most 3 steps" in line for line in logged)
    for asked, kept in ((2, 2), (50, 3), (None, 3)):  # a smaller budget of the command's own stands
        options = LoopOptions.make(max_steps=asked)
        options.check_loop(None)
        assert options.max_steps == kept
    for wrong in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("RNNKIT_MAX_STEPS", wrong)
        code, _, err = run_cli("train", str(word_corpus.path), "--out", str(tmp_path / "w"), "--recipe", "seed")
        assert code == 2 and "RNNKIT_MAX_STEPS=" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "w").exists()
    monkeypatch.setenv("RNNKIT_MAX_STEPS", "")  # empty: as if unset
    summary = train(word_corpus, tmp_path / "q", recipe="seed", hidden=8, max_steps=5, log=lambda _: None,
                    progress=False)
    assert summary["steps"] == 5


def decided(corpus, **options):
    cfg = make_config(**options).resolve(corpus)
    return {name: getattr(cfg, name) for name in SHORT_RUN}


def test_a_long_time_budget_chooses_a_wider_model_and_a_decaying_rate(word_corpus):
    pytest.importorskip("torch")
    (five, at_five), (ten, at_ten) = LONG_RUNS
    assert (five, at_five) == (300, {"hidden": 512, "lr": 0.004, "decay": "linear", "projection": 256, "dropout": 0.3,
                                     "weight_decay": 0.1})
    assert (ten, at_ten) == (600, {"hidden": 640, "lr": 0.011, "decay": "linear", "projection": 256, "dropout": 0.45,
                                   "weight_decay": 0.1})
    assert SHORT_RUN == {"hidden": 256, "lr": 0.002, "decay": "none", "projection": 0, "dropout": 0.3,
                         "weight_decay": 0.0}
    # this corpus's 13 words: no projection, the short run's dropout and the five minutes' rate, and more
    # weight decay (characters' own measurements)
    at_five = {**at_five, "projection": 0, "weight_decay": 0.3}
    at_ten = {**at_ten, "projection": 0, "dropout": 0.3, "lr": 0.004, "weight_decay": 0.3}
    for seconds, expected in ((five, at_five), (ten - 1, at_five), (ten, at_ten), (3600, at_ten)):
        assert decided(word_corpus, engine="torch", max_time=seconds) == expected
    for short in ({}, {"max_time": 90}, {"max_time": five - 1}, {"epochs": 100}):
        assert decided(word_corpus, engine="torch", **short) == SHORT_RUN
    # what the user gives is kept; the rest still follows the budget
    assert decided(word_corpus, engine="torch", max_time=600, hidden=64) == {**at_ten, "hidden": 64}
    given = {"decay": "cosine", "lr": 0.01}
    assert decided(word_corpus, engine="torch", max_time=300, **given) == {**at_five, **given}
    # away from the recommended model, where the long runs were not measured: the short run's values
    for other in ({"engine": "numpy"}, {"cell": "gru"}, {"softmax": "adaptive"}, {"optimizer": "sgd"},
                  {"recipe": "seed"}):
        expected = {**SHORT_RUN, **{k: v for k, v in make_config(**other).__dict__.items() if k in SHORT_RUN
                                    and v not in (None, "auto")}}
        assert decided(word_corpus, **{"engine": "torch", "max_time": 600, **other}) == expected


def test_the_budget_s_projection_is_for_a_large_vocabulary(tmp_path):
    pytest.importorskip("torch")
    import numpy as np

    import rnnkit
    from rnnkit.lm.config import PROJECTED_VOCABULARY

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(PROJECTED_VOCABULARY)]
    text = "\n".join(" ".join(rng.choice(words, 12)) for _ in range(3000)) + "\n" + " ".join(words) + "\n"
    (tmp_path / "big.txt").write_text(text, encoding="utf-8")
    corpus = rnnkit.prepare(tmp_path / "big.txt", tmp_path / "big", lines=True, vocab_size=0, progress=False)
    assert len(corpus.vocab) >= PROJECTED_VOCABULARY
    cfg = make_config(engine="torch", max_time=600).resolve(corpus)
    assert (cfg.hidden, cfg.projection, cfg.tie, cfg.dropout, cfg.weight_decay) == (640, 256, True, 0.45, 0.1)
    assert "adam, lr 0.011, weight decay 0.1, linear decay to 0 over the budget;" in cfg.describe(len(corpus.vocab))
    assert cfg.model_config(len(corpus.vocab)).embedding == 256  # tied to the projection's width
    assert make_config(engine="torch", max_time=600, projection=0).resolve(corpus).projection == 0  # given: kept
    assert make_config(engine="torch", max_time=600, dropout=0.1).resolve(corpus).dropout == 0.1
    assert make_config(engine="torch", max_time=300).resolve(corpus).dropout == 0.3
    assert make_config(engine="torch", max_time=300).resolve(corpus).lr == 0.004
    assert make_config(engine="torch", max_time=600, weight_decay=0.0).resolve(corpus).weight_decay == 0.0
    assert make_config(engine="torch", max_time=300).resolve(corpus).weight_decay == 0.1
    assert make_config(engine="torch", max_time=90).resolve(corpus).weight_decay == 0.0
    assert make_config(engine="torch", max_time=600).resolve(corpus, {"hidden": 640}).projection == 0  # an old run's


def test_a_resumed_run_keeps_what_its_first_budget_chose(tmp_path, word_corpus):
    pytest.importorskip("torch")
    options = dict(engine="torch", batch_size=4, evaluate_every=0.5, log=lambda _: None, progress=False)
    train(word_corpus, tmp_path / "m", max_time=LONG_RUNS[0][0], max_steps=3, **options)
    summary = train(word_corpus, tmp_path / "m", resume=True, max_time=60, max_steps=6, **options)
    trained = load_model(tmp_path / "m").info["training"]
    assert summary["steps"] == 6 and {k: trained[k] for k in ("hidden", "decay")} == {"hidden": 512, "decay": "linear"}
    assert make_config(max_time=60).resolve(word_corpus, {"hidden": 512}).hidden == 512
    assert make_config(max_time=600, engine="torch").resolve(word_corpus, {"hidden": 512}).hidden == 512  # not 640
    assert make_config(max_time=60).resolve(word_corpus, {"hidden": 512, "decay": "none"}).decay == "none"
    old = {"hidden": 512}  # a checkpoint from before --decay: none
    assert make_config(max_time=600, engine="torch").resolve(word_corpus, old).decay == "none"
    # a small vocabulary's own choices (no projection, less dropout, more weight decay) give way to the
    # checkpoint's too
    saved = {"hidden": 640, "projection": 128, "dropout": 0.45, "weight_decay": 0.05}
    assert decided(word_corpus, engine="torch", max_time=600) == {**LONG_RUNS[1][1], "projection": 0, "dropout": 0.3,
                                                                  "lr": 0.004, "weight_decay": 0.3}
    resumed = make_config(max_time=600, engine="torch").resolve(word_corpus, saved)
    assert (resumed.projection, resumed.dropout, resumed.weight_decay) == (128, 0.45, 0.05)
    # a checkpoint from before --weight-decay trained without it, and resumes so
    assert make_config(max_time=600, engine="torch").resolve(word_corpus, {"hidden": 640}).weight_decay == 0.0


def test_a_budget_of_steps_or_time_alone_ends_the_run_not_a_count_of_epochs(tmp_path, word_corpus, monkeypatch):
    from rnnkit.rank.config import RankTrainConfig
    from rnnkit.seq2seq import Seq2SeqTrainConfig
    from rnnkit.trainer.loop import UNBOUNDED_EPOCHS
    from rnnkit.trainer.record import RunRecord

    options = dict(hidden=8, batch_size=4, evaluate_every=100, engine="numpy", log=lambda _: None, progress=False)
    bounded = train(word_corpus, tmp_path / "bounded", max_steps=50, **options)
    per_epoch = bounded["steps"] / bounded["epochs"]
    # more steps than the LM's 20 epochs take: the steps end the run (they stopped at 20 epochs before)
    steps = math.ceil(21 * per_epoch)
    summary = train(word_corpus, tmp_path / "m", max_steps=steps, **options)
    assert (summary["stopped_by"], summary["steps"]) == ("max_steps", steps) and summary["epochs"] > 20
    given = train(word_corpus, tmp_path / "given", max_steps=steps, epochs=2, **options)
    assert given["stopped_by"] == "epochs" and given["epochs"] == 2
    totals, real_start = [], RunRecord.start
    monkeypatch.setattr(RunRecord, "start", lambda self, total, *a: totals.append(total) or real_start(self, total, *a))
    timed = train(word_corpus, tmp_path / "timed", max_time=0.5, **options)
    assert timed["stopped_by"] == "max_time" and totals == [None]  # progress has no step count to be "of"
    for kind, epochs in ((RankTrainConfig, 4.0), (Seq2SeqTrainConfig, 10.0)):
        assert kind(engine="numpy").resolve().epochs == epochs == kind.EPOCHS
        assert kind(engine="numpy", max_time=600).resolve().epochs == UNBOUNDED_EPOCHS
        assert kind(engine="numpy", max_time=600, epochs=3).resolve().epochs == 3



TRAINERS = {"lm": ("rnnkit.lm.train", "LMTask", "corpus", {"recipe": "seed", "hidden": 4}),
            "ranker": ("rnnkit.rank.train", "RankTask", "rank-data", {"hidden": 4, "embedding": 4, "batch_size": 4}),
            "seq2seq": ("rnnkit.seq2seq.train", "Seq2SeqTask", "pairs", {"hidden": 4, "embedding": 4, "batch_size": 4,
                                                                         "decode_pairs": 0})}


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_max_time_bounds_the_whole_command(tiny_models, tmp_path, monkeypatch, kind):
    """`rank train --max-time 60` took 88 s: reading the rows, fitting TF-IDF, the final evaluation
    and the hybrid's weighing lay outside the budget. On a clock that moves as the work does (a
    training step 0.5 s, an evaluation 4 s, a ranker's weighing of its stages 4 s), every kind's
    whole command now ends within its --max-time, and trains meanwhile."""
    import rnnkit
    from rnnkit.rank import train as rank_train

    clock = {"now": 1000.0}
    monkeypatch.setattr(time, "perf_counter", lambda: clock["now"])

    def taking(seconds, function):
        def timed(*args, **kwargs):
            clock["now"] += seconds
            return function(*args, **kwargs)
        return timed

    module, name, data, options = TRAINERS[kind]
    task = getattr(importlib.import_module(module), name)
    for method, seconds in (("train_step", 0.5), ("evaluate", 4.0)):
        monkeypatch.setattr(task, method, taking(seconds, getattr(task, method)))
    monkeypatch.setattr(rank_train, "weigh_stages", taking(4.0, rank_train.weigh_stages))
    started = clock["now"]
    model = rnnkit.train(tiny_models / data, tmp_path / kind, max_time=30, engine="numpy", progress=False,
                         log=lambda _: None, **options)
    assert clock["now"] - started <= 30, clock["now"] - started  # before: past it by the evaluation after the loop
    assert model.summary["steps"] >= 20 and model.summary["stopped_by"] == "max_time"
    said = []  # a budget that one evaluation and the one after the loop spend says so
    rnnkit.train(tiny_models / data, tmp_path / "short", max_time=6, engine="numpy", progress=False, log=said.append,
                 **options)
    assert any(line.startswith("--max-time 6 s is too short") for line in said), said
