"""Faults while writing: a disk that fills during a checkpoint or the model's final write leaves
the previous checkpoint and files whole, and says so in one line; a dead run's lock is no lock."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.trainer.checkpoint import load_checkpoint


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = "the cat dog bird sat saw ran on a mat log tree .".split()
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(" ".join(rng.choice(words, size=6)) for _ in range(200)) + "\n", encoding="utf-8")
    return rnnkit.prepare(path, tmp_path / "tiny", lines=True, valid_fraction=0.1, seed=1)


TRAIN = ("--recipe", "seed", "--hidden", "8", "--epochs", "2", "--evaluate-every", "0.5")


def fill_disk_after(monkeypatch, writes: int) -> None:
    """Every durable write flushes with ``os.fsync``: the first ``writes`` succeed, then the disk is full."""
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def one_error_line(err: str) -> bool:
    """The run's log (stderr, as every verb's) ends in one line saying what stopped it, no traceback."""
    return err.count("rnnkit: error") == 1 and err.strip().splitlines()[-1].startswith("rnnkit: error") \
        and "Traceback" not in err


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".old")]


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, corpus, run_cli, monkeypatch):
    out = tmp_path / "m"
    fill_disk_after(monkeypatch, writes=2)  # the first checkpoint's two files, then nothing
    status, _, err = run_cli("train", corpus.path, "--out", out, *TRAIN)
    assert status == 1 and one_error_line(err)
    assert "no space left on the device" in err and "the previous checkpoint" in err
    state, arrays = load_checkpoint(out)  # whole, and the one before the fault
    assert state["position"]["step"] == 0 and "param.U" in arrays
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    status, _, _ = run_cli("train", corpus.path, "--out", out, *TRAIN, "--resume")  # space again: it goes on
    assert status == 0 and (out / "config.json").exists()


def test_a_full_disk_before_the_first_checkpoint_is_followed_by_its_own_advice(tmp_path, corpus, run_cli,
                                                                               monkeypatch):
    """Nothing was kept: "run the command again (with --resume)" must still work, as printed."""
    out = tmp_path / "m"
    fill_disk_after(monkeypatch, writes=0)
    status, _, err = run_cli("train", corpus.path, "--out", out, *TRAIN)
    assert status == 1 and "no space left on the device" in err and "--resume" in err
    monkeypatch.undo()
    status, _, err = run_cli("train", corpus.path, "--out", out, *TRAIN, "--resume")
    assert status == 0 and "training from the start" in err and (out / "config.json").exists()
    assert leftovers(tmp_path) == []


def test_a_full_disk_during_the_final_write_keeps_the_checkpoint_to_finish_from(tmp_path, corpus, run_cli,
                                                                               monkeypatch):
    out = tmp_path / "m"
    fill_disk_after(monkeypatch, writes=2 * 5)  # five checkpoints (steps 0 to 2 epochs), then the model's files
    status, _, err = run_cli("train", corpus.path, "--out", out, *TRAIN)
    assert status == 1 and "no space left on the device" in err
    assert not (out / "config.json").exists() and leftovers(tmp_path) == []
    state, _ = load_checkpoint(out)
    monkeypatch.undo()
    status, stdout, _ = run_cli("train", corpus.path, "--out", out, *TRAIN, "--resume", "--json")
    assert status == 0 and json.loads(stdout)["steps"] == state["position"]["step"]  # nothing trained twice
    assert rnnkit.load(out).score(["the cat sat ."])[0].tokens > 0


def test_a_real_full_file_system_keeps_the_previous_checkpoint(tmp_path, corpus):
    """On a small tmpfs (where this test may mount one): the second checkpoint does not fit."""
    mount = tmp_path / "small"
    mount.mkdir()
    size = 56 * 1024  # a checkpoint of this model is ~36 kB: one fits, two do not
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        run = subprocess.run([sys.executable, "-m", "rnnkit", "train", str(corpus.path), "--out", str(mount / "m"),
                              "--recipe", "seed", "--hidden", "32", "--optimizer", "adam", "--epochs", "1",
                              "--evaluate-every", "0.5"], capture_output=True, text=True, check=False)
        assert run.returncode == 1 and one_error_line(run.stderr), run.stderr
        assert "no space left on the device" in run.stderr
        state, arrays = load_checkpoint(mount / "m")
        assert state["position"]["step"] == 0 and arrays["param.U"].shape == (32, len(corpus.vocab))
        assert leftovers(mount) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_the_lock_of_a_killed_run_does_not_block_the_next(tmp_path, corpus, run_cli):
    out = tmp_path / "m"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from rnnkit.trainer.checkpoint import one_run_at_a_time
@one_run_at_a_time
def run(data, out):
    print("holding", flush=True)
    time.sleep(60)
run(None, {str(out)!r})
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        status, _, err = run_cli("train", corpus.path, "--out", out, *TRAIN)
        assert status == 2 and f"is in use: another run (process {holder.pid})" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / ".m.lock").exists()  # left behind by kill -9, but no longer held
    status, _, _ = run_cli("train", corpus.path, "--out", out, *TRAIN)
    assert status == 0 and not (tmp_path / ".m.lock").exists()
