"""A run tells its story: training points and evaluations in metrics.jsonl, the plot drawn from
them, TensorBoard's scalars, and early stopping on patience."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.lm import train
from tests.conftest import resume_counted


def read_log(model):
    return [json.loads(line) for line in (model / "metrics.jsonl").read_text().splitlines()]


def test_the_record_holds_about_a_hundred_training_points_and_every_evaluation(tmp_path, word_corpus):
    summary = train(word_corpus, tmp_path / "m", recipe="seed", hidden=8, lr=0.05, batch_size=4, epochs=3,
                    evaluate_every=1, log=lambda _: None, progress=False)
    log = read_log(tmp_path / "m")
    points = [e for e in log if "train_loss" in e]
    evaluations = [e for e in log if "valid_loss" in e]
    assert summary["steps"] > 200 and 90 <= len(points) <= 110  # ~100 whatever the length
    assert len(evaluations) == 4 and not any("train_loss" in e for e in evaluations)
    assert [e["step"] for e in log] == sorted(e["step"] for e in log)  # in the order they happened
    for p in points:
        assert {"step", "epoch", "tokens", "seconds", "lr", "tokens_per_second"} <= set(p)
        assert np.isfinite(p["train_loss"]) and p["tokens_per_second"] > 0
    first, last = np.mean([p["train_loss"] for p in points[:10]]), np.mean([p["train_loss"] for p in points[-10:]])
    assert last < first - 0.1  # the curve falls
    # Each point is the mean since the one before: together they are the run's whole training loss.
    assert summary["train_loss"] == points[-1]["train_loss"]
    assert (tmp_path / "m" / "loss.png").stat().st_size > 10_000


def test_a_resumed_run_keeps_its_record(tmp_path, word_corpus, steps_taken):
    options = dict(recipe="seed", hidden=8, lr=0.05, batch_size=4, epochs=2, evaluate_every=0.5,
                   log=lambda _: None, progress=False)
    train(word_corpus, tmp_path / "whole", **options)
    train(word_corpus, tmp_path / "split", max_steps=70, **options)
    resume_counted(tmp_path / "split", steps_taken, lambda: train(word_corpus, tmp_path / "split", resume=True, **options))
    whole, split = read_log(tmp_path / "whole"), read_log(tmp_path / "split")
    evaluations = lambda log: [(e["step"], e["valid_loss"]) for e in log if "valid_loss" in e]  # noqa: E731
    # The interrupted run evaluated once more (at its stop); the evaluations it shares agree.
    assert set(evaluations(whole)) <= set(evaluations(split))
    assert [e["step"] for e in split] == sorted(e["step"] for e in split)


def test_patience_stops_after_evaluations_without_improvement(tmp_path, word_corpus):
    # A rate of 1.0 makes the validation loss wander: it stops well before the 20 epochs.
    summary = train(word_corpus, tmp_path / "m", recipe="seed", hidden=8, lr=1.0, epochs=20, evaluate_every=0.5,
                    halve_lr=False, patience=2, log=lambda _: None, progress=False)
    evaluations = [e for e in read_log(tmp_path / "m") if "valid_loss" in e]
    losses = [e["valid_loss"] for e in evaluations]
    best = int(np.argmin(losses))
    assert summary["stopped_by"] == "patience" and summary["epochs"] < 20
    assert len(losses) == best + 3  # the best, then two evaluations without a new best
    assert summary["valid_loss"] == losses[best] and summary["best"]["step"] == evaluations[best]["step"]


def test_patience_below_one_is_refused_before_anything_is_written(tmp_path, word_corpus, run_cli):
    status, _, err = run_cli("train", word_corpus.path, "--out", tmp_path / "m", "--patience", "0")
    assert status == 2 and "--patience: 0 is too small" in err and not (tmp_path / "m").exists()


def test_plot_draws_a_run_again_on_a_log_scale(tmp_path, word_corpus, run_cli):
    train(word_corpus, tmp_path / "m", recipe="seed", hidden=8, epochs=1, log=lambda _: None, progress=False)
    status, out, _ = run_cli("plot", tmp_path / "m", "--log-scale", "--out", tmp_path / "log.svg")
    assert status == 0 and "<svg" in (tmp_path / "log.svg").read_text()
    status, _, err = run_cli("plot", tmp_path)
    assert status == 2 and "has no metrics.jsonl" in err
    (tmp_path / "m" / "metrics.jsonl").write_text("not json\n")
    status, _, err = run_cli("plot", tmp_path / "m")
    assert status == 2 and "is not a training record" in err


def test_tensorboard_gets_the_same_scalars(tmp_path, word_corpus):
    pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(word_corpus, tmp_path / "m", engine="torch", hidden=8, epochs=1, evaluate_every=0.5, tensorboard=True,
          log=lambda _: None, progress=False)
    events = EventAccumulator(str(tmp_path / "m" / "tensorboard"))
    events.Reload()
    log = read_log(tmp_path / "m")
    train_losses = [s.value for s in events.Scalars("loss/train")]
    assert train_losses == pytest.approx([e["train_loss"] for e in log if "train_loss" in e], rel=1e-6)
    assert [s.value for s in events.Scalars("loss/valid")] == pytest.approx(
        [e["valid_loss"] for e in log if "valid_loss" in e], rel=1e-6)
    assert {"lr", "tokens_per_second"} <= set(events.Tags()["scalars"])
