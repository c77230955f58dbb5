"""`rnnkit gradcheck`, `rnnkit train`, `rnnkit import-tutorial`, model directories."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import rnnkit
from rnnkit import RnnkitError
from rnnkit.compat.tutorial_import import import_tutorial
from rnnkit.io.modeldir import load_model
from rnnkit.lm import train
from rnnkit.text.vocab import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN


def test_gradcheck_cli_passes_and_reports(run_cli):
    status, out, _ = run_cli("gradcheck", "--cell", "rnn", "--vocab-size", "100", "--hidden", "10", "--json")
    report = json.loads(out)
    assert status == 0 and report["passed"] is True
    assert set(report["max_relative_error"]) == {"U", "V", "W"}
    assert max(report["max_relative_error"].values()) < 1e-3


def test_gradcheck_cli_fails_with_exit_status_1_when_gradients_are_wrong(run_cli):
    # Truncated BPTT is not the loss's gradient: the check must say so.
    status, out, _ = run_cli("gradcheck", "--vocab-size", "30", "--hidden", "5", "--length", "8",
                             "--bptt-truncate", "1")
    assert status == 1 and "FAILED" in out


@pytest.fixture
def corpus(tmp_path):
    lines = ["the cat sat on the mat .", "the dog sat on the log .", "a cat saw a dog .",
             "the dog saw the cat .", "a bird sat on a cat ."]
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(lines * 30) + "\n", encoding="utf-8")
    return rnnkit.prepare(path, tmp_path / "tiny", lines=True, valid_fraction=0.1, seed=1)


def test_train_lowers_the_validation_loss_and_writes_a_model(tmp_path, corpus):
    logs = []
    summary = train(corpus, tmp_path / "model", recipe="seed", hidden=16, lr=0.05, epochs=3, evaluate_every=1, seed=0,
                    log=logs.append)
    metrics = [json.loads(line) for line in (tmp_path / "model" / "metrics.jsonl").read_text().splitlines()]
    metrics = [m for m in metrics if "valid_loss" in m]  # the evaluations (the rest: training points)
    assert abs(metrics[0]["valid_loss"] - np.log(len(corpus.vocab))) < 0.05  # untrained: log C
    assert summary["valid_loss"] < 0.6 * metrics[0]["valid_loss"]
    assert logs[0].startswith(f"model: RNN 1×16 (untied), vocabulary {len(corpus.vocab)}; sgd, lr 0.05; ")
    assert len(logs) - 1 == len(metrics) == 4  # the model's line, then one per evaluation
    files = load_model(tmp_path / "model")
    assert files.config.cell == "rnn" and files.config.hidden == 16
    assert files.params["U"].shape == (16, len(corpus.vocab)) and files.params["U"].dtype == np.float32
    assert files.vocab.tokens == corpus.vocab.tokens


def test_train_is_deterministic_under_a_seed(tmp_path, corpus):
    for name in ("a", "b"):
        train(corpus, tmp_path / name, recipe="seed", hidden=8, lr=0.05, epochs=1, seed=3, batch_size=4,
              log=lambda _: None)
    a, b = load_model(tmp_path / "a").params, load_model(tmp_path / "b").params
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_train_halves_the_rate_when_the_loss_rises(tmp_path, corpus):
    summary = train(corpus, tmp_path / "m", recipe="seed", hidden=8, lr=1.0, epochs=4, evaluate_every=0.5, seed=0,
                    log=lambda _: None)
    metrics = [json.loads(line) for line in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    halved = [m for m in metrics if "lr_halved_to" in m]
    assert halved and summary["final_lr"] == 1.0 / 2 ** len(halved)


@pytest.mark.parametrize("keep", ["best", "last"])
def test_the_model_kept_is_the_best_evaluated_or_the_last(tmp_path, corpus, keep):
    # A rate of 1.0 makes the validation loss go up and down: the best is not the last.
    summary = train(corpus, tmp_path / "m", recipe="seed", hidden=8, lr=1.0, epochs=4, evaluate_every=0.5, seed=0,
                    halve_lr=False, keep=keep, log=lambda _: None)
    metrics = [json.loads(line) for line in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    losses = [m["valid_loss"] for m in metrics if "valid_loss" in m]
    assert min(losses) < losses[-1]
    expected = min(losses) if keep == "best" else losses[-1]
    assert summary["valid_loss"] == expected and summary["last_valid_loss"] == losses[-1]
    assert summary["best"]["valid_loss"] == min(losses)
    evaluated = rnnkit.lm.model.evaluate_model(tmp_path / "m", corpus, engine="numpy")
    assert evaluated["loss"] == pytest.approx(expected, rel=1e-6)


def test_train_max_time_stops_early(tmp_path, corpus):
    summary = train(corpus, tmp_path / "m", recipe="seed", hidden=8, epochs=1000, max_time=0.5, log=lambda _: None)
    assert summary["stopped_by"] == "max_time" and summary["epochs"] < 1000


def test_train_cli_json_and_refusals(run_cli, tmp_path, corpus):
    out = tmp_path / "model"
    status, stdout, _ = run_cli("train", corpus.path, "--out", out, "--engine", "numpy", "--cell", "rnn",
                                "--hidden", "8", "--epochs", "1", "--json")
    summary = json.loads(stdout)
    assert status == 0 and {"train_loss", "valid_loss", "valid_perplexity", "tokens_per_second", "seconds"} <= set(summary)
    status, _, err = run_cli("train", corpus.path, "--out", out)
    assert status == 2 and "already exists" in err
    status, _, err = run_cli("train", tmp_path / "nothing", "--out", tmp_path / "x")
    assert status == 2 and "not a prepared corpus" in err
    assert not (tmp_path / "x").exists()


def _tutorial_npz(path, vocab_size=20, hidden=5, dtype=np.float32):
    rng = np.random.default_rng(0)
    arrays = {"U": rng.standard_normal((hidden, vocab_size)).astype(dtype),
              "V": rng.standard_normal((vocab_size, hidden)).astype(dtype),
              "W": rng.standard_normal((hidden, hidden)).astype(dtype)}
    np.savez(path, **arrays)
    return arrays


def _tutorial_vocab(path, size=20):
    words = [SENTENCE_START, SENTENCE_END] + [f"w{i}" for i in range(size - 3)] + [UNKNOWN_TOKEN]
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return words


def test_import_tutorial_round_trip_is_bit_for_bit(run_cli, tmp_path):
    arrays = _tutorial_npz(tmp_path / "model.npz")
    words = _tutorial_vocab(tmp_path / "vocab.txt")
    status, _, err = run_cli("import-tutorial", tmp_path / "model.npz", "--vocab", tmp_path / "vocab.txt",
                             "--out", tmp_path / "imported")
    assert status == 0, err
    files = load_model(tmp_path / "imported")
    for name, array in arrays.items():
        assert files.params[name].dtype == array.dtype
        assert files.params[name].tobytes() == array.tobytes()
    assert files.vocab.tokens == words and files.config.hidden == 5


def test_import_tutorial_with_vocab_from_a_prepared_corpus(tmp_path, corpus):
    _tutorial_npz(tmp_path / "model.npz", vocab_size=len(corpus.vocab))
    import_tutorial(tmp_path / "model.npz", tmp_path / "imported", vocab_from=corpus.path)
    assert load_model(tmp_path / "imported").vocab.tokens == corpus.vocab.tokens


def test_import_tutorial_says_what_disagrees(tmp_path):
    _tutorial_npz(tmp_path / "model.npz", vocab_size=20)
    _tutorial_vocab(tmp_path / "vocab.txt", size=25)
    with pytest.raises(RnnkitError, match="has 25 tokens but the weights are for 20"):
        import_tutorial(tmp_path / "model.npz", tmp_path / "out", vocab=tmp_path / "vocab.txt")
    np.savez(tmp_path / "bad.npz", U=np.zeros((5, 20)), V=np.zeros((21, 5)), W=np.zeros((5, 5)))
    with pytest.raises(RnnkitError, match="V must be"):
        import_tutorial(tmp_path / "bad.npz", tmp_path / "out", vocab=tmp_path / "vocab.txt")
    np.savez(tmp_path / "pickled.npz", U=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(RnnkitError, match="pickled objects"):
        import_tutorial(tmp_path / "pickled.npz", tmp_path / "out", vocab=tmp_path / "vocab.txt")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(RnnkitError, match="not a readable .npz"):
        import_tutorial(tmp_path / "junk.npz", tmp_path / "out", vocab=tmp_path / "vocab.txt")
    assert not (tmp_path / "out").exists()


def test_corrupt_model_directories_are_clear_errors(tmp_path):
    _tutorial_npz(tmp_path / "model.npz")
    _tutorial_vocab(tmp_path / "vocab.txt")
    import_tutorial(tmp_path / "model.npz", tmp_path / "m", vocab=tmp_path / "vocab.txt")
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(RnnkitError, match="is corrupt, not a safetensors file"):
        load_model(tmp_path / "m")
    with pytest.raises(RnnkitError, match="not a model directory"):
        load_model(tmp_path)


def test_deep_embedded_model_trains_and_round_trips(tmp_path, corpus, run_cli):
    summary = train(corpus, tmp_path / "deep", recipe="seed", engine="numpy", hidden=8, layers=2, embedding=6,
                    dropout=0.2,
                    optimizer="adam", lr=0.02, batch_size=4, epochs=2, log=lambda _: None)
    files = load_model(tmp_path / "deep")
    assert files.config.layers == 2 and files.config.embedding == 6
    assert files.params["E"].shape == (6, len(corpus.vocab)) and files.params["U2"].shape == (8, 8)
    assert summary["valid_perplexity"] < len(corpus.vocab) / 2
    status, out, _ = run_cli("evaluate", tmp_path / "deep", corpus.path, "--engine", "numpy", "--json")
    assert status == 0 and abs(json.loads(out)["loss"] - summary["valid_loss"]) < 1e-5
    status, out, _ = run_cli("gradcheck", "--layers", "2", "--embedding", "4", "--json")
    assert status == 0 and json.loads(out)["passed"] is True


def test_progress_prints_plain_lines_off_a_terminal():
    from rnnkit.trainer.record import Progress

    lines: list[str] = []
    progress = Progress(total=50, initial=10, enabled=False, log=lines.append, unit="tokens", every=0.0)
    progress.update(2.5, 1234.0)
    assert len(lines) == 1 and lines[0].startswith("step      11 of 50  loss 2.5000  1,234 tokens/s")
    timed = Progress(total=10**9, initial=0, enabled=False, log=lines.append, unit="tokens", every=0.0, max_time=90)
    timed.update(2.5, 1234.0)
    assert lines[-1].endswith("about 1.5 min to go")  # its time ends it, not its billion steps
    untold = Progress(total=None, initial=0, enabled=False, log=lines.append, unit="tokens", every=0.0, max_time=90)
    untold.update(2.5, 1234.0)  # a run its time alone ends: no count of steps to be "of"
    assert lines[-1].startswith("step       1  loss 2.5000") and lines[-1].endswith("about 1.5 min to go")


def test_an_option_given_twice_is_an_error_not_a_silent_override():
    from rnnkit.cli import build_parser

    parser = build_parser()
    both = [parser.parse_args(["vanishing", *cells]).cell for cells in
            (["--cell", "rnn", "lstm"], ["--cell", "rnn", "--cell", "lstm"])]
    assert both == [["rnn", "lstm"], ["rnn", "lstm"]]  # several values, either way
    assert parser.parse_args(["vanishing"]).cell == ["rnn", "gru", "lstm"]  # the default, when not given


def test_a_single_value_given_twice_is_refused(run_cli):
    status, out, err = run_cli("seq2seq", "translate", "M", "--beam", "2", "--beam", "3")
    assert status == 2 and out == "" and "--beam is given twice; give it once" in err


@pytest.mark.parametrize("verb", [("train",), ("rank", "train"), ("seq2seq", "train")])
def test_a_second_run_into_the_same_out_is_refused_while_the_first_trains(verb, tmp_path, run_cli):
    """Two runs would interleave their checkpoints: the second stops at once, touching nothing."""
    from rnnkit.trainer.checkpoint import one_run_at_a_time

    out = tmp_path / "model"
    seen = {}

    @one_run_at_a_time
    def first(data, out):
        seen["status"], _, seen["err"] = run_cli(*verb, tmp_path / "data", "--out", out)
        return "done"

    assert first(None, out) == "done"
    assert seen["status"] == 2 and f"{out} is in use: another run (process {os.getpid()})" in seen["err"]
    assert not out.exists() and not (tmp_path / ".model.lock").exists()  # released, and cleaned up


def test_json_output_is_one_document_per_line(run_cli):
    status, out, _ = run_cli("data", "list", "--json")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 1 and json.loads(lines[0])["corpora"]
