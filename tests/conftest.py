from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@contextmanager
def serving(arguments: list[str]):
    """``rnnkit serve ARGUMENTS`` in a process of its own on a free loopback port, once /health
    answers: yields (its URL, the process), and stops it after."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "rnnkit", "serve", *arguments, "--port", str(port),
                                "--log-level", "warning"], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"rnnkit serve did not start: {process.stderr.read()}") from None
            time.sleep(0.1)
    try:
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or a clean skip when this checkout has none."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{name} not found in ../shared/data")
    return path


def break_gradient(model, name: str, factor: float = 1.01) -> None:
    """Make ``model`` report its ``name`` gradient off by ``factor``: a gradient check must catch it."""
    honest = model.loss_and_grads

    def broken(*args, **kwargs):
        loss, grads = honest(*args, **kwargs)
        grads[name] = grads[name] * factor
        return loss, grads

    model.loss_and_grads = broken


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own rnnkit cache, so none touches the user's."""
    if "RNNKIT_TEST_REAL_HOME" not in os.environ:
        monkeypatch.setenv("RNNKIT_HOME", str(tmp_path_factory.mktemp("rnnkit-home")))


@pytest.fixture
def run_cli(capsys):
    """Run `rnnkit ARGS...` in-process: (exit status, stdout, stderr)."""
    from rnnkit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            status = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own usage errors
            status = e.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def word_corpus(tmp_path):
    """300 sentences of six words from a vocabulary of 13, prepared (10% validation)."""
    import numpy as np

    import rnnkit

    rng = np.random.default_rng(0)
    words = "the cat dog bird sat saw ran on a mat log tree .".split()
    lines = [" ".join(rng.choice(words, size=6)) for _ in range(300)]
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rnnkit.prepare(path, tmp_path / "tiny", lines=True, valid_fraction=0.1, seed=1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A tiny language model, ranker and seq2seq model, trained for two steps each."""
    import numpy as np

    import rnnkit
    from rnnkit.cli import main
    from rnnkit.lm import train
    from rnnkit.rank import train_ranker
    from rnnkit.seq2seq import train_seq2seq
    from tests.test_rank import _keyword_data

    tmp = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    words = "the cat dog sat on a mat .".split()
    sentences = [" ".join(rng.choice(words, 5)) for _ in range(60)]
    (tmp / "text.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    corpus = rnnkit.prepare(tmp / "text.txt", tmp / "corpus", lines=True, progress=False)
    quiet = {"log": lambda _: None, "progress": False, "max_steps": 2}
    train(corpus, tmp / "lm", recipe="seed", hidden=4, engine="numpy", **quiet)
    assert main(["rank", "build", str(_keyword_data(tmp)), "--out", str(tmp / "rank-data")]) == 0
    train_ranker(tmp / "rank-data", tmp / "ranker", model="dual-encoder", hidden=4, embedding=4, batch_size=4,
                 engine="numpy", **quiet)
    (tmp / "pairs").mkdir()
    for split in ("train", "valid"):
        (tmp / "pairs" / f"{split}.tsv").write_text("".join(f"{s}\t{s.upper()}\n" for s in sentences),
                                                     encoding="utf-8")
    train_seq2seq(tmp / "pairs", tmp / "seq2seq", hidden=4, embedding=4, batch_size=4, decode_pairs=0,
                  engine="numpy", **quiet)
    return tmp


def pytest_report_header(config) -> str:
    """Which CPU ran the suite (numeric tolerances must hold on any): model and widest vector unit."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return f"cpu: {platform.processor() or platform.machine()}"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    widest = next((isa for isa in ("avx512f", "avx2", "avx", "sse4_2") if isa in flags), "none of avx/sse4.2")
    return f"cpu: {model}, {os.cpu_count()} cores, widest vectors: {widest}"


@pytest.fixture
def steps_taken(monkeypatch) -> list[int]:
    """The optimizer steps this process takes from here on, by their number in the run."""
    from rnnkit.trainer import loop

    taken, real = [], loop._Run.step

    def counted(self, batch):
        real(self, batch)
        taken.append(self.position.step)

    monkeypatch.setattr(loop._Run, "step", counted)
    return taken


def resume_counted(out: Path, steps_taken: list[int], resume):
    """``resume()`` a run from the checkpoint in ``out``, asserting that the checkpoint is past step
    0 and that the resumed run takes only the steps after it (a resume that silently started over
    would end with the same weights as an uninterrupted run, so comparing weights alone cannot tell)."""
    import json

    at = json.loads((out / "checkpoint" / "state.json").read_text())["position"]["step"]
    assert at > 0
    steps_taken.clear()
    summary = resume()
    assert summary["resumed_from"] == at and steps_taken == list(range(at + 1, summary["steps"] + 1))
    return summary
