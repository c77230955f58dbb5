"""The README's promises: CI runs its test command, and its Python example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^python3 -m venv .*$", readme, flags=re.M)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any("rnnkit quickstart" in c for c in commands)


def test_readme_tutorial_example_runs(capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(import numpy as np\nfrom rnnkit.tutorial.*?)```", readme, flags=re.S).group(1)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["o"].shape == (4, 100) and namespace["s"].shape == (5, 10)
    assert "Gradient check for parameter W passed." in capsys.readouterr().out
    assert namespace["losses"][-1][1] < namespace["losses"][0][1]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(import rnnkit\n.*?)```", readme, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "animals.txt").write_text(
        "The cat sat on the mat. The dog sat on the log!\nDid the cat see the dog? The cat did.\n\n"
        "A bird sang. The bird flew away; the cat watched the bird.\n", encoding="utf-8")
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["corpus"].vocab.tokens[:3] == ["the", "SENTENCE_START", "SENTENCE_END"]
    assert namespace["first"] == ["the", "cat", "sat", "on", "the", "mat", "."]


def test_readme_load_example_runs(tmp_path, monkeypatch):
    import rnnkit
    from rnnkit.lm import train

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(import rnnkit\n\nm = rnnkit\.load.*?)```", readme, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text("To be, or not to be. The king is dead. Give me your hand.\n" * 40, encoding="utf-8")
    corpus = rnnkit.prepare(tmp_path / "t.txt", tmp_path / "c", valid_fraction=0)
    train(corpus, tmp_path / "runs" / "quickstart" / "shakespeare-lstm", recipe="seed", hidden=8, epochs=1,
          log=lambda _: None)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert isinstance(namespace["m"], rnnkit.LanguageModel)


def test_readme_gated_cell_example_runs():
    pytest.importorskip("torch")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(import numpy as np\nfrom rnnkit.models.numpy import.*?)```", readme,
                        flags=re.S).group(1)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert max(namespace["errors"].values()) < 1e-2 and "V" not in namespace["grads"]
    assert namespace["norms"].shape == (1, 4)
    assert set(namespace["fast"].numpy_params()) == set(namespace["model"].params)


def test_readme_adaptive_softmax_example_runs(tmp_path, monkeypatch):
    """Run on a tiny corpus of the same name, shortened by budget options (3 steps, 8 units)."""
    import rnnkit

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(import rnnkit\n\nmodel = rnnkit.train.*?)```", readme, flags=re.S).group(1)
    assert "max_time=300)" in example
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text("In the beginning God created the heaven and the earth.\n" * 60, encoding="utf-8")
    rnnkit.prepare(tmp_path / "t.txt", tmp_path / "kjv-lm", progress=False)
    namespace: dict = {}
    exec(compile(example.replace("max_time=300)", "max_time=300, max_steps=3, hidden=8, log=lambda _: None)"),
                 "README.md", "exec"), namespace)
    assert isinstance(namespace["model"], rnnkit.LanguageModel) and namespace["model"].config.cutoffs
