"""Property-based fuzzing (Hypothesis) of everything that reads a user's input: the tokenizer,
``prepare``, the score and rerank inputs, model directories with one file damaged, a ranker's
response cache damaged, and the Python API (any value for any training option or method argument). The
property everywhere: no uncaught exception; a failure is a ``RnnkitError`` of one line.

CI runs a few hundred inputs, derandomized (the same inputs on every run, so a failure
reproduces; Hypothesis prints the failing example and its ``@reproduce_failure`` blob).
``RNNKIT_FUZZ_SCALE=N`` multiplies the number of inputs, with fresh random ones: the longer
campaign, ``benchmarks/fuzz.py``."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit.errors import RnnkitError

SCALE = int(os.environ.get("RNNKIT_FUZZ_SCALE", "0"))


def fuzz(examples: int):
    """Hypothesis settings: ``examples`` derandomized inputs in CI, SCALE times as many fresh ones in a campaign."""
    return settings(max_examples=examples * max(SCALE, 1), derandomize=SCALE == 0, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True)


def one_line(e: RnnkitError) -> bool:
    return bool(str(e).strip()) and "\n" not in str(e).strip()


# Text that finds the corners: quotes, separators, line ends of every kind, NULs, odd Unicode.
PIECES = st.sampled_from(['"', '""', ",", "\t", "\r", "\n", "\r\n", "\x00", "\ufeff", "\u2028", "'", "''", "``",
                          "...", "n't", "U.S.", " ", "\u00a0", "é", "\U0001f600", "(", ")", "[", "-", "--", "$5.00"])
TEXT = st.lists(st.one_of(st.text(max_size=12), PIECES), max_size=40).map("".join)


TOKENIZER = None


@fuzz(1000)
@given(TEXT)
def test_tokenize_never_fails_and_agrees_with_nltk(text):
    from nltk.tokenize.destructive import NLTKWordTokenizer

    from rnnkit.text.tokenize import SentenceSplitter, WordTokenizer

    global TOKENIZER
    TOKENIZER = TOKENIZER or (WordTokenizer(), NLTKWordTokenizer(), SentenceSplitter())
    ours, nltk, splitter = TOKENIZER
    for sentence in splitter.split(text):
        assert ours.tokenize(sentence) == nltk.tokenize(sentence)


def _write(data: bytes, name: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = directory / name
    path.write_bytes(data)
    return path


def _csv_rows(draw_rows):
    buffer = io.StringIO()
    import csv

    csv.writer(buffer, quoting=csv.QUOTE_MINIMAL).writerows(draw_rows)
    return buffer.getvalue()


INPUTS = st.one_of(
    TEXT.map(lambda t: (t.encode("utf-8", "surrogatepass"), "in.txt")),
    st.lists(st.lists(TEXT, min_size=1, max_size=3), min_size=1, max_size=6).map(
        lambda rows: (_csv_rows([["body", "x"], *rows]).encode("utf-8", "surrogatepass"), "in.csv")),
    st.binary(max_size=300).map(lambda b: (b, "in.txt")),
    st.binary(max_size=300).map(lambda b: (b, "in.csv")),
    st.binary(max_size=300).map(lambda b: (b, "in.jsonl")),
    st.tuples(st.integers(1, 300_000), st.sampled_from(["a", "a ", "\x00"])).map(
        lambda n: ((n[1] * n[0]).encode(), "in.txt")),  # one huge line
    st.lists(st.sampled_from([b"the cat .", b"\r\n", b"\n", b"\r", b"\x00", b"\xff"]), max_size=30).map(
        lambda parts: (b"".join(parts), "in.txt")),  # mixed line endings
)


@fuzz(300)
@given(INPUTS, st.sampled_from(["word", "char"]), st.sampled_from(["strict", "replace"]), st.booleans())
def test_prepare_succeeds_or_says_why_in_one_line(data_name, level, errors, lines):
    data, name = data_name
    path = _write(data, name)
    try:
        corpus = rnnkit.prepare(path, path.parent / "out", level=level, encoding_errors=errors, lines=lines,
                                valid_fraction=0.2, progress=False)
        assert len(corpus.vocab) >= 2 and corpus.meta["tokens"] > 0
    except RnnkitError as e:
        assert one_line(e), str(e)
    finally:
        shutil.rmtree(path.parent)


LOADERS = {"lm": lambda p: rnnkit.load(p, engine="numpy").score(["the cat sat ."]),
           "ranker": lambda p: rnnkit.load_ranker(p, engine="numpy").rank("the cat", ["a dog", "the mat"]),
           "seq2seq": lambda p: rnnkit.load_seq2seq(p, engine="numpy").translate(["the cat"])}


def _damage(data: bytes, how: str, where: float, noise: bytes) -> bytes:
    cut = int(len(data) * where)
    if how == "truncate":
        return data[:cut]
    if how == "empty":
        return b""
    if how == "pickle":  # never unpickled: a pickle is just bytes that are not our format
        return pickle.dumps({"weights": np.zeros(3), "evil": os.system})
    if how == "noise":
        return noise
    return data[:cut] + noise + data[cut + len(noise):]  # overwrite a stretch in place


@fuzz(300)
@given(st.sampled_from(sorted(LOADERS)), st.data(), st.sampled_from(["truncate", "empty", "pickle", "noise", "patch"]),
       st.floats(0, 1), st.binary(min_size=1, max_size=64))
def test_a_model_directory_with_a_damaged_file_loads_or_says_why(tiny_models, kind, data, how, where, noise):
    models = tiny_models
    files = sorted(p.relative_to(models / kind) for p in (models / kind).rglob("*") if p.is_file())
    victim = data.draw(st.sampled_from(files))
    copy = Path(tempfile.mkdtemp(prefix="fuzz-")) / kind
    shutil.copytree(models / kind, copy)
    try:
        (copy / victim).write_bytes(_damage((copy / victim).read_bytes(), how, where, noise))
        LOADERS[kind](copy)
    except RnnkitError as e:
        assert one_line(e), str(e)
    finally:
        shutil.rmtree(copy.parent)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)


@fuzz(150)
@given(st.sampled_from(sorted(LOADERS)), st.data(), JSON)
def test_a_config_value_replaced_by_any_json_loads_or_says_why(tiny_models, kind, data, value):
    """A model's config.json with one value of any section replaced by any JSON: a type, a range, an
    unknown key — refused in one line, or a model that still answers."""
    config = json.loads((tiny_models / kind / "config.json").read_text())
    section = data.draw(st.sampled_from([None, "model", "text", "tokens"]))
    where = config if section is None else config[section]
    where[data.draw(st.sampled_from(sorted(where)))] = value
    copy = Path(tempfile.mkdtemp(prefix="fuzz-")) / kind
    shutil.copytree(tiny_models / kind, copy)
    try:
        (copy / "config.json").write_text(json.dumps(config))
        LOADERS[kind](copy)
    except RnnkitError as e:
        assert one_line(e), str(e)
    finally:
        shutil.rmtree(copy.parent)


@fuzz(300)
@given(st.one_of(TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=300)),
       st.sampled_from([("score",), ("score", "--tokenized"), ("score", "--per-token", "--json"), ("rerank",),
                        ("rerank", "--json")]), st.sampled_from(["strict", "replace"]))
def test_score_and_rerank_read_any_input(tiny_models, run_cli_module, data, verb, errors):
    path = _write(data, "input.txt")
    try:
        extra = ("--encoding-errors", errors) if verb[0] == "score" else ()
        status, _, err = run_cli_module(verb[0], tiny_models / "lm", path, *verb[1:], *extra, "--engine", "numpy")
        assert status in (0, 2), err
        if status == 2:
            assert len(err.strip().splitlines()) == 1 and err.startswith("rnnkit: error: "), err
    finally:
        shutil.rmtree(path.parent)


@pytest.fixture(scope="module")
def run_cli_module():
    """``run_cli`` for Hypothesis tests (which may not take function-scoped fixtures)."""
    import contextlib

    from rnnkit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main([str(a) for a in args])
            except SystemExit as e:
                status = e.code
        return status, out.getvalue(), err.getvalue()

    return run


# The Python API: what a caller may pass is any Python value at all, not only JSON.
ODD = st.sampled_from([None, True, False, 0, -1, 2**63, 10**30, 0.5, -0.0, float("nan"), float("inf"), "", "3", " ",
                       "\x00", b"bytes", [], [None], [""], {}, ("a",), object(), np.int64(3), np.float32("nan"),
                       np.array(["a", "b"]), np.zeros((2, 2))])
VALUES = st.one_of(ODD, st.integers(-3, 50), TEXT, st.lists(st.one_of(TEXT, ODD), max_size=3), JSON)


def _options_of(kind: str):
    from rnnkit.kinds import lookup

    return lookup(kind).part("options")


@fuzz(300)
@given(st.sampled_from(["lm", "ranker", "seq2seq"]), st.data(), VALUES)
def test_any_value_for_any_training_option_is_taken_or_refused_in_one_line(tiny_corpus_module, kind, data, value):
    """What ``rnnkit.train(data, out, option=value)`` checks before it reads the data: the option's
    declaration, then the run's own rules (``resolve``)."""
    from rnnkit.data.corpus import PreparedCorpus
    from rnnkit.options import declared

    cls = _options_of(kind)
    name = data.draw(st.sampled_from(sorted(d.name for d in declared(cls))))
    try:
        config = cls.make(**{name: value})
        config.resolve(PreparedCorpus.open(tiny_corpus_module)) if kind == "lm" else config.resolve()
    except RnnkitError as e:
        assert one_line(e), str(e)


def _calls(models: dict[str, Any]) -> dict[str, Callable[[Any], Any]]:
    lm, ranker, s2s = models["lm"], models["ranker"], models["seq2seq"]
    responses = ["the cat .", "a dog sat ."]
    return {
        "lm.score": lambda v: lm.score(v), "lm.score([v])": lambda v: lm.score([v]),
        "lm.score(per_token)": lambda v: lm.score(["the cat ."], per_token=v),
        "lm.perplexity": lambda v: lm.perplexity(v), "lm.next_token_probs": lambda v: lm.next_token_probs(v),
        "lm.rerank": lambda v: lm.rerank(v), "lm.rerank([v])": lambda v: lm.rerank([v]),
        **{f"lm.generate({name})": (lambda name: lambda v: lm.generate(**{"n": 2, "max_length": 8, "length": 8,
                                                                          name: v}))(name)
           for name in ("n", "min_length", "max_length", "seed", "temperature", "top_k", "top_p", "prime", "length")},
        "ranker.rank(context)": lambda v: ranker.rank(v, responses),
        "ranker.rank(candidates)": lambda v: ranker.rank("the cat", v),
        "ranker.rank_repository(context)": lambda v: ranker.rank_repository(v, responses),
        "ranker.rank_repository(responses)": lambda v: ranker.rank_repository("the cat", v),
        "ranker.rank_repository(top)": lambda v: ranker.rank_repository("the cat", responses, top=v),
        "ranker.score(contexts)": lambda v: ranker.score(v, ["a dog ."]),
        "ranker.score(responses)": lambda v: ranker.score(["the cat"], v),
        "seq2seq.translate": lambda v: s2s.translate(v), "seq2seq.translate([v])": lambda v: s2s.translate([v]),
        "seq2seq.translate(beam)": lambda v: s2s.translate(["the cat"], beam=v),
        "seq2seq.translate(max_len)": lambda v: s2s.translate(["the cat"], max_len=v),
    }


@fuzz(400)
@given(st.data(), VALUES)
def test_any_argument_to_a_model_s_methods_is_answered_or_refused_in_one_line(loaded_models, data, value):
    calls = _calls(loaded_models)
    call = data.draw(st.sampled_from(sorted(calls)))
    try:
        calls[call](value)
    except RnnkitError as e:
        assert one_line(e), (call, str(e))


CACHE_DAMAGE = ["truncate", "empty", "pickle", "noise", "patch", "huge header", "a directory", "a link out",
                "cache a file", "cache a link out"]


@fuzz(100)
@given(st.sampled_from(CACHE_DAMAGE), st.floats(0, 1), st.binary(min_size=1, max_size=64))
def test_a_damaged_response_cache_is_rebuilt_and_answers_the_same(tiny_models, how, where, noise):
    """A ranker's response cache is derived data: whatever became of it, the answers are those of
    a fresh model, and nothing is written outside the model directory."""
    copy = Path(tempfile.mkdtemp(prefix="fuzz-"))
    shutil.copytree(tiny_models / "ranker", copy / "ranker")
    shutil.rmtree(copy / "ranker" / "cache", ignore_errors=True)  # other tests' repositories
    responses = [f"the {w} sat on a mat ." for w in ("cat", "dog", "bird", "fish")]
    outside = copy / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    try:
        expected = rnnkit.load_ranker(copy / "ranker", engine="numpy").rank_repository("the dog", responses, top=4)
        cache = copy / "ranker" / "cache"
        (entry,) = cache.iterdir()
        if how == "huge header":
            header = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 16)}
            buffer = io.BytesIO()
            np.lib.format.write_array_header_1_0(buffer, header)
            entry.write_bytes(buffer.getvalue() + noise)
        elif how == "a directory":
            entry.unlink()
            entry.mkdir()
        elif how == "a link out":
            entry.unlink()
            entry.symlink_to(outside / "keep.txt")
        elif how == "cache a file":
            shutil.rmtree(cache)
            cache.write_bytes(noise)
        elif how == "cache a link out":
            shutil.rmtree(cache)
            cache.symlink_to(outside, target_is_directory=True)
        else:
            entry.write_bytes(_damage(entry.read_bytes(), how, where, noise))
        got = rnnkit.load_ranker(copy / "ranker", engine="numpy").rank_repository("the dog", responses, top=4)
        assert [r["text"] for r in got] == [r["text"] for r in expected]
        assert np.allclose([r["score"] for r in got], [r["score"] for r in expected], rtol=1e-5, atol=1e-6)
        assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"] and \
            (outside / "keep.txt").read_text() == "mine"
    except RnnkitError as e:
        assert one_line(e), str(e)
    finally:
        shutil.rmtree(copy)


@pytest.fixture(scope="module")
def loaded_models(tiny_models):
    return {"lm": rnnkit.load(tiny_models / "lm", engine="numpy"),
            "ranker": rnnkit.load(tiny_models / "ranker", engine="numpy"),
            "seq2seq": rnnkit.load(tiny_models / "seq2seq", engine="numpy")}


@pytest.fixture(scope="module")
def tiny_corpus_module(tiny_models):
    return tiny_models / "corpus"
