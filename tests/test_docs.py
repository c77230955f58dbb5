"""The README and the documentation site keep their promises: the site builds with ``--strict``
(no broken link or reference), and every code block on every page runs.

The tutorial runs as a learner meets it: each chapter's commands and Python, verbatim, in the
site's order, in one fresh folder with an empty ``RNNKIT_HOME``, every corpus from ``rnnkit data
get`` and every model made by an earlier command of its page; only ``RNNKIT_MAX_STEPS`` (which
every training honours) cuts the trainings short.

Every other block runs in one of three ways, and the inventory test holds each block to one of them:

- by the generic runner below (no marker): in a fresh sandbox holding small stand-ins for the
  corpora and models the pages name, python blocks executed, bash and console blocks run line by
  line in a shell (a console block's ``$`` lines), each training command shortened to two steps
  (``--max-steps 2``) and the quickstart to three seconds of training;
- by a test of its own (``<!-- run by: NAME -->`` on the line before the block): NAME is a test
  in this file that checks what the block computes, and reads the block through its marker;
- not at all (``<!-- not run: REASON -->``): a synopsis, or a command that needs what CI has not
  (many machines, a GPU, a server left running); the reason says which.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# The chapters in the site's order (mkdocs.yml's nav).
TUTORIAL = [ROOT / "docs" / page for page in
            re.findall(r"^ +- [^:\n]+: (tutorial/[\w-]+\.md)$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)]
CODE = ("python", "bash", "console")
MARKER = re.compile(r"<!-- (run by|not run): (.+?) -->")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    code: str
    marker: tuple[str, str] | None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    lines, found, i = page.read_text(encoding="utf-8").splitlines(), [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)", lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            marker = MARKER.search(lines[i - 1]) if i and lines[i - 1].startswith("<!--") else None
            if fence.group(1) in CODE:
                found.append(Block(page, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                                   marker.groups() if marker else None))
            i = end
        i += 1
    return found


ALL = [b for page in PAGES for b in blocks(page)]


def marked(test_name: str) -> list[Block]:
    """The blocks marked ``<!-- run by: test_name -->`` (the same example may be on two pages)."""
    found = [b for b in ALL if b.marker == ("run by", test_name)]
    assert found, f"no block is marked run by {test_name}"
    return found


def test_every_code_block_runs_or_says_why_not():
    assert len(ALL) > 30
    named = {b.marker[1] for b in ALL if b.marker and b.marker[0] == "run by"}
    assert named <= set(globals()), f"blocks name tests that do not exist: {named - set(globals())}"
    for b in ALL:
        if b.marker and b.marker[0] == "not run":
            assert len(b.marker[1]) > 20, f"{b.name}: say why it is not run"
    runs = [b for b in ALL if not b.marker]
    assert len(runs) >= len(ALL) / 2, "most blocks run as they are"


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "site" / "tutorial" / "attention" / "index.html").exists()
    assert "rnnkit.train" in (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    css = (tmp_path / "site" / "stylesheets" / "extra.css").read_text(encoding="utf-8")  # a long command wraps,
    assert "pre-wrap" in css and "stylesheets/extra.css" in (tmp_path / "site" / "index.html").read_text()  # not cut


# ------------------------------------------------------------------------------ the sandbox

WORDS = ("the king queen lord lady cat dog sat saw ran on a mat and then it was so good my your "
         "thou thee will not go with you to . , ? !").split()


def _sentences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS[:-4], size=rng.integers(4, 10))).capitalize() + rng.choice([".", "?", "!"])
            for _ in range(n)]


def _train_lm(corpus: Path, out: Path, cell: str = "lstm") -> None:
    from rnnkit.lm import train

    train(corpus, out, recipe="seed", cell=cell, hidden=8, max_steps=2, log=lambda _: None, progress=False)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Path:
    """Small stand-ins for what the pages name but do not make themselves."""
    import rnnkit
    from rnnkit.cli import main
    from rnnkit.rank import train_ranker
    from rnnkit.seq2seq import train_seq2seq

    base = tmp_path_factory.mktemp("docs-sandbox")
    text = "\n".join(_sentences(400, 0)) + "\n"
    for name in ("my-text.txt", "my.txt", "text.txt", "tinyshakespeare.txt"):
        (base / name).write_text(text, encoding="utf-8")
    (base / "kjv").mkdir()  # a vocabulary of 6,000 words (for the adaptive softmax's cutoffs), one sentence a line
    rng = np.random.default_rng(4)
    for split, n in (("train", 3000), ("valid", 100), ("test", 100)):
        words = np.concatenate([np.arange(6000), rng.integers(0, 6000, 10 * n)]) if split == "train" else \
            rng.integers(0, 6000, 10 * n)
        (base / "kjv" / f"{split}.txt").write_text("".join(" ".join(f"w{w}" for w in row) + " .\n"
                                                          for row in np.array_split(words, n)), encoding="utf-8")
    csv = "id,body\n" + "".join(f'{i},"{s}"\n' for i, s in enumerate(_sentences(300, 1)))
    for name in ("reddit-comments.csv", "reddit-comments-sample.csv"):
        (base / name).write_text(csv, encoding="utf-8")
    (base / "nbest.txt").write_text("the king will go .\nking the go will .\n\nmy lord , thou art good .\n"
                                    "lord my , good art thou .\n", encoding="utf-8")
    quiet = {"progress": False, "lines": True}
    for corpus in ("shakespeare", "runs/quickstart/shakespeare", "reddit", "my-corpus"):
        rnnkit.prepare(base / "my-text.txt", base / corpus, **quiet)
    rnnkit.prepare(base / "kjv" / "train.txt", base / "kjv-lm", valid_file=base / "kjv" / "valid.txt",
                   test_file=base / "kjv" / "test.txt", vocab_size=0, tokenizer="whitespace", **quiet)
    for cell in ("rnn", "gru", "lstm"):
        _train_lm(base / "kjv-lm", base / f"kjv-{cell}", cell)
    _train_lm(base / "kjv-lm", base / "kjv-lm-10min")
    _train_lm(base / "runs/quickstart/shakespeare", base / "runs/quickstart/shakespeare-lstm")
    _train_lm(base / "reddit", base / "reddit-lstm")
    chat = "\n".join(f"{'ab'[i % 2]}: {s}" + ("\n" if i % 6 == 5 else "") for i, s in enumerate(_sentences(600, 2)))
    (base / "chat.txt").write_text(chat + "\n", encoding="utf-8")
    assert main(["rank", "build", str(base / "chat.txt"), "--out", str(base / "plays")]) == 0
    train_ranker(base / "plays", base / "plays-ranker", model="dual-encoder", hidden=8, embedding=8, max_steps=2,
                 log=lambda _: None, progress=False)
    folio = base / "home" / ".cache" / "rnnkit" / "corpora" / "shakespeare-folio"
    folio.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (folio / f"{split}.tsv").write_text("".join(f"{s}\t{s.lower()}\n" for s in _sentences(200, 3)),
                                            encoding="utf-8")
    train_seq2seq(folio, base / "folio", hidden=8, embedding=8, max_steps=2, decode_pairs=0, log=lambda _: None,
                  progress=False)
    archives = Path.home() / ".cache" / "rnnkit" / "archives"  # fetched once on this machine: not again
    if archives.is_dir():
        shutil.copytree(archives, base / "home" / ".cache" / "rnnkit" / "archives")
    return base


TRAINING = re.compile(r"\b(rnnkit|-m rnnkit)( rank| seq2seq)? train\b")


def shortened(line: str) -> str:
    """A command as the tests run it: training for two steps, the quickstart for three seconds."""
    if TRAINING.search(line):
        line = re.sub(r" --max-steps \d+", "", line)
        line = TRAINING.sub(lambda m: m.group(0) + " --max-steps 2", line)
    line = line.replace("rnnkit quickstart", "rnnkit quickstart --train-seconds 3")
    return re.sub(r"--nproc-per-node \d+", "--nproc-per-node 2", line)


def as_typed(b: Block) -> list[str]:
    """What a learner runs of a block: a console block's ``$`` lines, a bash block's lines. The
    quickstart's set-up (a venv and pip, what CI itself does) comes down to the command it runs."""
    lines = b.code.replace("\\\n", " ").splitlines()  # a line continued with a backslash is one command
    if b.lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    typed = []
    for line in lines:
        if line.startswith("python3 -m venv"):
            last = line.split("&&")[-1].strip()
            line = last.removeprefix(".venv/bin/") if last.startswith(".venv/bin/rnnkit") else ""
        if line.strip() and not line.lstrip().startswith("#"):
            typed.append(line)
    return typed


def commands(b: Block) -> list[str]:
    """A block's commands as the sandbox runs them (``shortened``)."""
    return [shortened(line) for line in as_typed(b)]


@pytest.mark.slow  # every block of the docs but the tutorial's (below), run
@pytest.mark.parametrize("b", [b for b in ALL if not b.marker and b.page not in TUTORIAL], ids=lambda b: b.name)
def test_the_block_runs(b, sandbox, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(sandbox, work, symlinks=True)
    home = work / "home"
    env = {**os.environ, "HOME": str(home), "RNNKIT_HOME": str(home / ".cache" / "rnnkit"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "NO_MKDOCS_2_WARNING": "1"}
    for written in re.findall(r'--out (\S+)|rnnkit\.(?:prepare|train)\([^,]+, "([^"]+)"', b.code):
        shutil.rmtree(work / "".join(written), ignore_errors=True)  # what the block makes, it makes afresh
    if b.lang == "python":
        run = subprocess.run([sys.executable, "-c", shortened_python(b.code)], cwd=work, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"{b.name}\n{run.stderr[-3000:]}"
        return
    for command in commands(b):
        run = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=work, env=env, capture_output=True,
                             text=True, timeout=600, stdin=subprocess.DEVNULL)
        assert run.returncode == 0, f"{b.name}: {command}\n{run.stderr[-3000:]}"


def shortened_python(code: str) -> str:
    """A python block as the tests run it: ``rnnkit.train`` calls for two steps."""
    return re.sub(r"rnnkit\.train\(([^\n]*)\)", r"rnnkit.train(\1, max_steps=2)", code)


# ------------------------------------------------------------------------------ the tutorial, verbatim

STEPS = "2"  # RNNKIT_MAX_STEPS: each training's steps in the verbatim run


@pytest.fixture(scope="module")
def learner(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """One fresh folder and an empty rnnkit home for the whole tutorial. The corpora's archives
    (what pip fetches) are copied in where this machine has them, so that CI asks pip once."""
    folder = tmp_path_factory.mktemp("learner")
    home = folder / ".home"
    archives = Path.home() / ".cache" / "rnnkit" / "archives"
    if archives.is_dir():
        shutil.copytree(archives, home / "archives")
    env = {**os.environ, "RNNKIT_HOME": str(home), "RNNKIT_MAX_STEPS": STEPS, "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "MPLBACKEND": "Agg"}
    return folder, env


@pytest.mark.slow  # the whole tutorial: every corpus built, every model trained (for two steps)
@pytest.mark.parametrize("page", TUTORIAL, ids=lambda p: p.stem)
def test_the_tutorial_runs_verbatim_in_a_fresh_folder(page, learner):
    folder, env = learner
    ran = 0
    for b in blocks(page):
        if b.marker and b.marker[0] == "not run":
            continue
        if b.lang == "python":
            run = subprocess.run([sys.executable, "-c", b.code], cwd=folder, env=env, capture_output=True,
                                 text=True, timeout=600)
            assert run.returncode == 0, f"{b.name}\n{run.stderr[-3000:]}"
            ran += 1
            continue
        for command in as_typed(b):
            started = time.perf_counter()
            run = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=folder, env=env,
                                 capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
            print(f"{time.perf_counter() - started:6.1f} s  {command}")  # what the chapter costs (pytest -s)
            assert run.returncode == 0, f"{b.name}: {command}\n{run.stdout[-1500:]}\n{run.stderr[-3000:]}"
            ran += 1
    assert ran, f"{page.name} runs nothing"


def test_the_tutorial_is_the_site_s_six_chapters():
    assert [p.stem for p in TUTORIAL] == ["language-models", "rnn-numpy", "vanishing-gradients", "gru-lstm",
                                          "chatbot", "attention"]


# ------------------------------------------------------------------------------ blocks with tests of their own

@pytest.fixture
def work(sandbox, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the sandbox, as the working directory."""
    shutil.copytree(sandbox, tmp_path / "work", symlinks=True)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


def run_example(b: Block) -> dict:
    namespace: dict = {}
    exec(compile(shortened_python(b.code), b.name, "exec"), namespace)
    return namespace


@pytest.mark.slow
def test_the_quickstart_commands(sandbox, tmp_path):
    """The second command is the one CI runs, verbatim; the first one's job runs here (three
    seconds of training), from the corpus's archive as the machine has it cached or as pip fetches it."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for b in marked("test_the_quickstart_commands"):
        lines = [line for line in b.code.splitlines() if line.startswith("python3 -m venv")]
        assert lines and all("rnnkit quickstart" in line or line in ci for line in lines), b.name
        assert any(line.endswith("pytest -q") for line in lines) or b.page.name == "index.md", b.name
    home = tmp_path / "home"
    shutil.copytree(sandbox / "home", home)
    run = subprocess.run([sys.executable, "-m", "rnnkit", "quickstart", "--train-seconds", "3", "--workdir",
                          str(tmp_path / "runs")], env={**os.environ, "HOME": str(home),
                                                        "RNNKIT_HOME": str(home / ".cache" / "rnnkit")},
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "English order scores higher in" in run.stdout and (tmp_path / "runs" / "shakespeare-lstm").is_dir()


def test_the_serve_examples_answer(sandbox, tmp_path):
    """`rnnkit serve` as the README starts it, then each curl of the pages against it."""
    from tests.conftest import serving

    with serving([str(sandbox / "runs" / "quickstart" / "shakespeare-lstm")]) as (url, _):
        curls = [c for b in marked("test_the_serve_examples_answer") for c in commands(b) if c.startswith("curl")]
        assert len(curls) >= 4
        for command in curls:
            run = subprocess.run(["bash", "-c", command.replace("localhost:8000", url)], capture_output=True, text=True, timeout=60)
            assert run.returncode == 0 and run.stdout.startswith("{"), (command, run.stdout, run.stderr)


def test_the_tutorial_example_computes(capsys):
    for b in marked("test_the_tutorial_example_computes"):
        namespace = run_example(b)
        assert namespace["o"].shape == (4, 100) and namespace["s"].shape == (5, 10)
        assert "Gradient check for parameter W passed." in capsys.readouterr().out
        assert namespace["losses"][-1][1] < namespace["losses"][0][1]


def test_the_prepared_corpus_example(work):
    (work / "animals.txt").write_text(
        "The cat sat on the mat. The dog sat on the log!\nDid the cat see the dog? The cat did.\n\n"
        "A bird sang. The bird flew away; the cat watched the bird.\n", encoding="utf-8")
    (b,) = marked("test_the_prepared_corpus_example")
    namespace = run_example(b)
    assert namespace["corpus"].vocab.tokens[:3] == ["the", "SENTENCE_START", "SENTENCE_END"]
    assert namespace["first"] == ["the", "cat", "sat", "on", "the", "mat", "."]


def test_the_load_example(work):
    import rnnkit

    (b,) = marked("test_the_load_example")
    assert isinstance(run_example(b)["m"], rnnkit.LanguageModel)


def test_the_gated_cell_example():
    pytest.importorskip("torch")
    (b,) = marked("test_the_gated_cell_example")
    namespace = run_example(b)
    assert max(namespace["errors"].values()) < 1e-2 and "V" not in namespace["grads"]
    assert namespace["norms"].shape == (1, 4)
    assert set(namespace["fast"].numpy_params()) == set(namespace["model"].params)


def test_the_adaptive_softmax_example(work):
    import rnnkit

    shutil.rmtree(work / "kjv-adaptive", ignore_errors=True)
    (b,) = marked("test_the_adaptive_softmax_example")
    model = run_example(b)["model"]
    assert isinstance(model, rnnkit.LanguageModel) and model.config.cutoffs and model.summary["steps"] == 2


def test_the_seq2seq_example(work):
    (b,) = marked("test_the_seq2seq_example")
    t = run_example(b)["t"]
    assert t.source_tokens == list("Seale vp your Lips") and t.weights.shape == (len(t.output_tokens) + 1, 18)
