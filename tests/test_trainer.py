"""One trainer for every kind: torchrun, gradient accumulation, mixed precision, TensorBoard and
patience work for the ranker and the encoder–decoder as they do for the language model."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tests.test_distributed import step_losses, torchrun, weights

torch = pytest.importorskip("torch")

# No dropout, no halving, float32 arithmetic: runs that can be compared step by step. Plain SGD:
# Adam divides each gradient by its own size, so that a weight whose gradient is float noise on both
# sides still moves by the rate, one way or the other.
SAME = ("--engine", "torch", "--dropout", "0", "--no-halve-lr", "--keep", "last", "--optimizer", "sgd",
        "--precision", "fp32")
RANK = (*SAME, "--hidden", "8", "--eval-rows", "40")
SEQ2SEQ = (*SAME, "--hidden", "12", "--embedding", "8", "--decode-pairs", "0", "--eval-pairs", "60")


@pytest.fixture(scope="module")
def rank_data(tmp_path_factory):
    from rnnkit.cli import main

    tmp = tmp_path_factory.mktemp("rank")
    rng = np.random.default_rng(0)
    words = "apple river stone cloud lamp horse bread violin garden window".split()
    lines = []
    for _ in range(120):
        a, b = rng.choice(words, 2, replace=False)
        lines += [f"ann: where is the {a} ?", f"bob: the {a} is by the {b} .", f"ann: and the {b} ?", ""]
    (tmp / "chat.txt").write_text("\n".join(lines), encoding="utf-8")
    assert main(["rank", "build", str(tmp / "chat.txt"), "--out", str(tmp / "data"), "--context-turns", "2"]) == 0
    return tmp / "data"


@pytest.fixture(scope="module")
def pairs_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("pairs")
    for split, n, seed in (("train", 300, 0), ("valid", 60, 1)):
        rng = random.Random(seed)
        lines = ["".join(rng.choice("abcde") for _ in range(rng.randint(2, 7))) for _ in range(n)]
        (data / f"{split}.tsv").write_text("".join(f"{s}\t{s[::-1]}\n" for s in lines), encoding="utf-8")
    return data


def _data(kind, rank_data, pairs_data, lr: str = "0.5") -> tuple:
    """The data and options of a run of ``kind`` (rank or seq2seq)."""
    return (rank_data, *RANK, "--lr", lr) if kind == "rank" else (pairs_data, *SEQ2SEQ, "--lr", lr)


def _train(run_cli, kind, *args) -> dict:
    status, out, err = run_cli(kind, "train", *args, "--json")
    assert status == 0, err
    return json.loads(out)


def _evaluations(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if "valid_loss" in line]


def assert_same_run(a, b, rtol: float = 1e-4) -> None:
    """The same steps' losses, the same validation losses (to ``rtol``; an interrupted run also
    evaluated where it stopped), and close weights."""
    np.testing.assert_allclose(step_losses(a), step_losses(b), rtol=rtol)
    valid_a, valid_b = ({e["step"]: e["valid_loss"] for e in _evaluations(run)} for run in (a, b))
    assert len(valid_a.keys() & valid_b.keys()) >= 3
    np.testing.assert_allclose([valid_a[s] for s in sorted(valid_a.keys() & valid_b.keys())],
                               [valid_b[s] for s in sorted(valid_a.keys() & valid_b.keys())], rtol=rtol)
    wa, wb = weights(a), weights(b)
    for name in wa:
        np.testing.assert_allclose(wa[name], wb[name], rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rank", "seq2seq"])
def test_two_processes_take_the_steps_of_one_and_resume_in_one(kind, rank_data, pairs_data, tmp_path, run_cli):
    """--batch-size 7 is the whole step's (4 rows on one process, 3 on the other). The ranker's
    default objective takes in-batch negatives: from the whole step's batch, over both processes."""
    args = (*_data(kind, rank_data, pairs_data), "--batch-size", "7", "--evaluate-every", "0.1")
    one = _train(run_cli, kind, *args, "--max-steps", "12", "--out", tmp_path / "one")
    done = torchrun(2, *args, "--max-steps", "12", "--out", tmp_path / "two", "--json", verb=(kind, "train"))
    two = json.loads(done.stdout)  # printed once, by the main process
    assert two["processes"] == 2 and one["processes"] == 1 and two["steps"] == one["steps"] == 12
    assert two["valid_loss"] == pytest.approx(one["valid_loss"], rel=1e-4)
    assert_same_run(tmp_path / "one", tmp_path / "two")
    # A checkpoint of two processes, resumed in one: it starts past step 0 and trains only the rest.
    torchrun(2, *args, "--max-steps", "5", "--out", tmp_path / "parts", verb=(kind, "train"))
    state = json.loads((tmp_path / "parts" / "checkpoint" / "state.json").read_text())
    assert state["position"]["step"] == 5
    resumed = _train(run_cli, kind, *args, "--max-steps", "12", "--out", tmp_path / "parts", "--resume")
    assert resumed["steps"] == 12 and len(step_losses(tmp_path / "parts")) == 12
    assert_same_run(tmp_path / "one", tmp_path / "parts")


@pytest.mark.parametrize("kind", ["rank", "seq2seq"])
def test_gradient_accumulation_takes_the_same_step(kind, rank_data, pairs_data, tmp_path, run_cli):
    """Three micro-batches of 4 rows make the step that one batch of 12 makes (the ranker with the
    binary objective: in-batch negatives would change with the micro-batch)."""
    args = (*_data(kind, rank_data, pairs_data), "--batch-size", "12", "--max-steps", "8", "--evaluate-every", "0.2",
            *(("--model", "dual-encoder") if kind == "rank" else ()))
    _train(run_cli, kind, *args, "--out", tmp_path / "whole")
    _train(run_cli, kind, *args, "--out", tmp_path / "micro", "--grad-accum", "3")
    assert_same_run(tmp_path / "whole", tmp_path / "micro", rtol=1e-5)


def test_gradient_accumulation_with_in_batch_negatives_is_refused(rank_data, tmp_path, run_cli):
    status, _, err = run_cli("rank", "train", rank_data, *RANK, "--out", tmp_path / "m", "--grad-accum", "2")
    assert status == 2 and "in-batch negatives would then come from each part" in err
    status, _, err = run_cli("rank", "train", rank_data, "--engine", "numpy", "--out", tmp_path / "m",
                             "--model", "dual-encoder", "--grad-accum", "2")
    assert status == 2 and "--grad-accum needs the torch engine" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("kind", ["rank", "seq2seq"])
def test_bf16_trains_and_fp16_is_refused_on_the_cpu(kind, rank_data, pairs_data, tmp_path, run_cli):
    given = _data(kind, rank_data, pairs_data)
    at = given.index("--precision")
    args = (*given[:at], *given[at + 2:], "--batch-size", "16", "--max-steps", "10")
    status, _, err = run_cli(kind, "train", *args, "--out", tmp_path / "m", "--device", "cpu", "--precision", "fp16")
    assert status == 2 and "--precision fp16 is for CUDA" in err and not (tmp_path / "m").exists()
    summary = _train(run_cli, kind, *args, "--out", tmp_path / "bf16", "--precision", "bf16")
    whole = _train(run_cli, kind, *args, "--out", tmp_path / "fp32", "--precision", "fp32")
    assert summary["precision"] == "bf16" and whole["precision"] == "fp32"
    bf16, fp32 = step_losses(tmp_path / "bf16"), step_losses(tmp_path / "fp32")
    assert bf16 != fp32  # autocast did compute in bf16 ...
    np.testing.assert_allclose(bf16, fp32, rtol=5e-2)  # ... and follows the float32 run


@pytest.mark.parametrize("kind", ["rank", "seq2seq"])
def test_tensorboard_gets_the_record_and_patience_stops(kind, rank_data, pairs_data, tmp_path, run_cli):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = (*_data(kind, rank_data, pairs_data, lr="20"), "--batch-size", "16", "--evaluate-every", "0.05",
            "--patience", "2", "--tensorboard", "--out", tmp_path / "m")
    summary = _train(run_cli, kind, *args)  # a rate this high stops improving at once
    assert summary["stopped_by"] == "patience" and summary["epochs"] < 4
    events = EventAccumulator(str(tmp_path / "m" / "tensorboard"))
    events.Reload()
    assert [s.value for s in events.Scalars("loss/valid")] == pytest.approx(
        [e["valid_loss"] for e in _evaluations(tmp_path / "m")], rel=1e-6)


def test_an_input_fed_run_resumes_exactly(pairs_data, tmp_path, run_cli):
    """Input feeding carries h̃ from step to step within a batch only: a run stopped and resumed
    takes the uninterrupted run's steps."""
    args = (*_data("seq2seq", None, pairs_data), "--input-feeding", "--batch-size", "8", "--evaluate-every", "0.1")
    _train(run_cli, "seq2seq", *args, "--max-steps", "12", "--out", tmp_path / "one")
    _train(run_cli, "seq2seq", *args, "--max-steps", "5", "--out", tmp_path / "parts")
    resumed = _train(run_cli, "seq2seq", *args, "--max-steps", "12", "--out", tmp_path / "parts", "--resume")
    assert resumed["steps"] == 12 and len(step_losses(tmp_path / "parts")) == 12
    assert_same_run(tmp_path / "one", tmp_path / "parts")
