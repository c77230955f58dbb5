"""Each option is declared once, and everything reads that declaration: the flags and their help,
the Python keywords and their checks, a config.json's validation and the docs' tables. The cases
below are generated from the declarations of every kind's options, so an option added tomorrow is
tested the day it is declared."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import rnnkit
from rnnkit import RnnkitError
from rnnkit.lm.config import LMConfig, TrainConfig
from rnnkit.options import add_flags, build, declared, from_json, interval, option, table
from rnnkit.rank.config import RankerConfig, RankTrainConfig
from rnnkit.seq2seq.config import Seq2SeqConfig, Seq2SeqTrainConfig
from rnnkit.trainer.options import kind_options

OPTIONS = {"lm": TrainConfig, "ranker": RankTrainConfig, "seq2seq": Seq2SeqTrainConfig}
VERBS = {"lm": ["train"], "ranker": ["rank", "train"], "seq2seq": ["seq2seq", "train"]}


def _beyond(d) -> list[tuple[Any, str]]:
    """Values of the right type just outside each bound, with their text on the command line."""
    if not d.spec.bounds:
        return []
    low, low_in, high, high_in = interval(d.spec.bounds)
    whole = d.base is int or (hasattr(d.base, "__args__") and d.base.__args__[0] is int)
    out = []
    if low is not None:
        out.append(low - 1 if low_in or whole else low)
    if high is not None:
        out.append(high + 1 if high_in or whole else high)
    out = [int(v) if whole else float(v) for v in out]
    return [([v] if hasattr(d.base, "__args__") else v, str(v)) for v in out]


def bad_values(d) -> list[tuple[Any, str | None]]:
    """Values option ``d`` refuses, each with its text on the command line (None: a flag cannot say it)."""
    if d.choices is not None:
        return [("no-such-choice", "no-such-choice"), (3, None)]
    if d.base is bool:
        return [("yes", None), (1, None)]
    if d.base is int:
        return [(2.5, "2.5"), ("16", None), (True, None), *_beyond(d)]
    if d.base is float:
        return [(math.nan, "nan"), (math.inf, "inf"), ("x", "x"), (True, None), *_beyond(d)]
    if d.base is str:
        return [(3, None)]
    return [("1,2", None), ([1.5], "1.5"), ([1, "2"], "1,a"), *_beyond(d)]  # a list of ids


CASES = [(kind, d, value, text) for kind, cls in OPTIONS.items() for d in declared(cls) if d.spec.cli
         for value, text in bad_values(d)]


@pytest.mark.parametrize("kind, d, value, text", CASES, ids=[f"{k}-{d.name}-{v!r}" for k, d, v, _ in CASES])
def test_every_option_refuses_what_its_declaration_refuses(kind, d, value, text, tmp_path, run_cli):
    """From Python: one RnnkitError naming the flag and the keyword, before the data is read or
    anything written. From the command line, the same value: one line and exit 2."""
    with pytest.raises(RnnkitError) as refused:
        rnnkit.train(tmp_path / "no-data", tmp_path / "out", kind=kind, **{d.name: value})
    assert f"{d.flag} ({d.name}=)" in str(refused.value) and "\n" not in str(refused.value)
    if text is not None:
        status, out, err = run_cli(*VERBS[kind], tmp_path / "no-data", "--out", tmp_path / "out", d.flag, text)
        assert status == 2 and out == "" and d.flag in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_the_issues_list_is_refused_with_the_options_name(tmp_path):
    """What a new user met from Python before the declarations were checked (each raised deep inside numpy,
    the loop or the config, or trained silently)."""
    refused = {"seed": -1, "evaluate_every": math.nan, "epochs": math.inf, "max_time": math.nan, "lr": math.nan,
               "hidden": 2.5}
    for name, value in {**refused, "max_time": -5}.items():
        with pytest.raises(RnnkitError, match=f"--{name.replace('_', '-')} \\({name}=\\)"):
            rnnkit.train(tmp_path / "none", tmp_path / "out", kind="lm", **{name: value})
    for value in ("16", True):
        with pytest.raises(RnnkitError, match=r"--hidden \(hidden=\): .* is not a whole number"):
            rnnkit.train(tmp_path / "none", tmp_path / "out", kind="ranker", hidden=value)
    with pytest.raises(RnnkitError, match=r"has no option 'max_tme'; did you mean max_time=\?"):
        rnnkit.train(tmp_path / "none", tmp_path / "out", kind="seq2seq", max_tme=60)
    with pytest.raises(RnnkitError, match="path="):
        rnnkit.load(None)
    with pytest.raises(RnnkitError, match="data="):
        rnnkit.train(None, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_the_defaults_a_model_records_are_the_defaults_training_used(tiny_models):
    """One default per field: where a kind's training leaves a model option to the declaration, the
    config class has that very default, and the model directory records it."""
    for options, config in ((RankTrainConfig, RankerConfig), (Seq2SeqTrainConfig, Seq2SeqConfig)):
        trained = {d.name: d.default for d in declared(options)}
        for d in declared(config):
            if d.spec.cli and trained.get(d.name) is not None:
                assert trained[d.name] == d.default, (config.__name__, d.name)
    ranker = json.loads((tiny_models / "ranker" / "config.json").read_text())["model"]
    seq2seq = json.loads((tiny_models / "seq2seq" / "config.json").read_text())["model"]
    assert (ranker["dropout"], ranker["max_context"]) == (RankerConfig.dropout, RankerConfig.max_context) == (0.3, 100)
    assert (seq2seq["cell"], seq2seq["dropout"]) == (Seq2SeqConfig.cell, Seq2SeqConfig.dropout) == ("lstm", 0.2)


def test_a_config_json_is_checked_against_the_declarations():
    good = LMConfig("lstm", 12, 5).to_dict()
    assert LMConfig.from_dict(good) == LMConfig("lstm", 12, 5)
    for name, value in (("hidden", 0), ("hidden", 2.5), ("dropout", 1.0), ("cell", "tcn"), ("tie", "yes")):
        with pytest.raises(RnnkitError, match=f"the lm model's config has {name} = .*; the file was damaged"):
            LMConfig.from_dict({**good, name: value})
    with pytest.raises(RnnkitError, match="settings this rnnkit does not know: heads"):
        LMConfig.from_dict({**good, "heads": 2})
    with pytest.raises(RnnkitError, match=r"--rerank-top \(rerank_top=\): 0 is too small"):
        RankerConfig("reranker", 12, objective="in-batch", rerank_top=0)


# ------------------------------------------------------------------------------ a field added in one place

@dataclass(frozen=True)
class WithHeads(Seq2SeqConfig):
    """A model option added in one place, as a contributor would add it."""

    heads: int = option(2, "attention heads", bounds="[1, 8]")


def test_a_field_declared_once_reaches_the_flags_the_keywords_config_json_and_the_docs():
    options = kind_options(WithHeads)
    parser = argparse.ArgumentParser()
    add_flags(parser, options)
    assert "--heads HEADS  attention heads (default: 2)" in " ".join(parser.format_help().split()).replace(
        "--heads HEADS attention", "--heads HEADS  attention")
    assert parser.parse_args(["--heads", "4"]).heads == 4 and not hasattr(parser.parse_args([]), "heads")
    assert build(options, {"heads": 3}, "training").heads == 3 and options().heads == 2
    with pytest.raises(RnnkitError, match=r"--heads \(heads=\): 9 is too large; give a whole number in \[1, 8\]"):
        build(options, {"heads": 9}, "training")
    with pytest.raises(RnnkitError, match="config has heads = 0, which is not a whole number in"):
        from_json(WithHeads, {**Seq2SeqConfig(12).to_dict(), "heads": 0}, "the seq2seq model's config")
    assert "| `--heads` | `heads=` | a whole number in [1, 8] | 2 | attention heads |" in table(options)
    assert "heads" in options.resume_keys()  # a checkpoint resumes only with the same heads


def test_the_docs_reference_tables_come_from_the_declarations():
    import importlib.util

    hooks = Path(__file__).resolve().parents[1] / "docs" / "hooks.py"
    spec = importlib.util.spec_from_file_location("docs_hooks", hooks)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.options_tables((hooks.parent / "reference.md").read_text(encoding="utf-8"))
    assert "<!-- options -->" not in page
    from rnnkit.lm.generate import Sampling
    from rnnkit.serve.options import Connections, Limits

    for title, options in (("rnnkit train", TrainConfig), ("rnnkit rank train", RankTrainConfig),
                           ("rnnkit seq2seq train", Seq2SeqTrainConfig), ("rnnkit generate", Sampling),
                           ("rnnkit serve", Limits), ("rnnkit serve", Connections)):
        assert f"### `{title}`" in page
        assert all(f"| `{d.flag}` | `{d.name}=` |" in page for d in declared(options) if d.spec.cli)


# ------------------------------------------------------------------------------ the models' methods

def test_the_models_methods_refuse_what_their_flags_refuse(tiny_models):
    """Each method's arguments are checked as the command line's flags are: one RnnkitError that
    names the argument, never numpy's or scikit-learn's error from deep inside, never a silent
    wrong answer (a str ranked as its characters, ``top=-1`` answering nothing)."""
    lm = rnnkit.load(tiny_models / "lm", engine="numpy")
    ranker = rnnkit.load(tiny_models / "ranker", engine="numpy")
    seq2seq = rnnkit.load(tiny_models / "seq2seq", engine="numpy")
    repository = ("the bread is warm .", "a horse .", "the river is cold .")
    cases = [
        (lambda: ranker.rank("hi", "abc"), r"candidates= must be a list of texts, not one text: give \['abc'\]"),
        (lambda: ranker.rank("hi", ["a"]), r"give at least 2 candidates to rank \(candidates= holds 1\)"),
        (lambda: ranker.rank(3, ["a", "b"]), "context= must be a text"),
        (lambda: ranker.rank("hi", ["a", None]), "candidates= must hold texts"),
        (lambda: ranker.rank_repository("hi", [], top=1), "responses= must be a list"),
        (lambda: ranker.rank_repository("hi", "abc"), "responses= must be a list"),
        (lambda: ranker.rank_repository("hi", ["a dog .", None]), "responses= must hold texts"),
        (lambda: ranker.rank_repository("hi", ["a dog .", " "]), "a context or response is empty"),
        (lambda: ranker.rank_repository("hi", repository, top=0), r"top=: 0 is too small; give a whole number"),
        (lambda: ranker.rank_repository("hi", repository, top=-1), "top=: -1 is too small"),
        (lambda: ranker.rank_repository("hi", repository, top=1.5), "top=: 1.5 is not a whole number"),
        (lambda: ranker.score(["a"], "b"), "responses= must be a list of texts"),
        (lambda: lm.score("a sentence"), "sentences= must be a list of texts, not one text"),
        (lambda: lm.score([]), "sentences= is empty"),
        (lambda: lm.score([b"bytes"]), "sentences= must hold texts"),
        (lambda: lm.rerank([["a", "b"], "c"]), r"groups\[1\]= must be a list of texts"),
        (lambda: lm.generate(n=0), r"-n \(n=\): 0 is too small"),
        (lambda: lm.generate(temperature=math.nan), r"--temperature \(temperature=\): nan is not a finite number"),
        (lambda: lm.generate(top_p=1.5), r"--top-p \(top_p=\): 1.5 is too large"),
        (lambda: lm.generate(seed=-1), r"--seed \(seed=\): -1 is too small"),
        (lambda: lm.generate(prime=3), r"--prime \(prime=\): 3 is not a string"),
        (lambda: seq2seq.translate("abc"), "texts= must be a list of texts, not one text"),
        (lambda: seq2seq.translate(["abc"], beam=0), "beam=: 0 is too small"),
        (lambda: seq2seq.translate(["abc"], beam=65), "beam=: 65 is too large"),
        (lambda: seq2seq.translate(["abc"], max_len=0), "max_len=: 0 is too small"),
    ]
    for call, message in cases:
        with pytest.raises(RnnkitError, match=message):
            call()
    assert [r["text"] for r in ranker.rank_repository("the river", repository, top=5)][:1] != []  # still answers
