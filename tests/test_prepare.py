"""Corpus preparation: the seed's preprocessing, its statistics, its output files, its errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

import rnnkit
from rnnkit import PreparedCorpus, RnnkitError
from rnnkit.text.vocab import (
    SENTENCE_END,
    SENTENCE_START,
    UNKNOWN_TOKEN,
    Vocabulary,
    escape,
    unescape,
)
from tests.conftest import shared_file

TEXT = """The cat sat on the mat. The dog sat on the log!
Did the cat see the dog? The cat did.

A bird sang. The bird flew away; the cat watched the bird.
"""


def _sentences(corpus: PreparedCorpus, split: str = "train") -> list[list[str]]:
    return [corpus.decode(s) for s in corpus.sentences(split)]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "animals.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_prepare_word_level(tmp_path, text_file):
    corpus = rnnkit.prepare(text_file, tmp_path / "out", valid_fraction=0)
    meta = corpus.meta
    assert meta["sentences"] == 6
    assert _sentences(corpus)[0] == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert _sentences(corpus)[1] == ["the", "dog", "sat", "on", "the", "log", "!"]
    # The vocabulary: the seed's order, by count with the markers counted once per sentence, unknown last.
    counts = Counter(t for s in _sentences(corpus) for t in s)
    tokens = corpus.vocab.tokens
    assert tokens[0] == "the" and counts["the"] == 10  # more frequent than the 6 sentence markers
    assert tokens[1:3] == [SENTENCE_START, SENTENCE_END]
    assert tokens[-1] == UNKNOWN_TOKEN and len(tokens) == len(counts) + 3
    ranked = [counts[t] if t in counts else 6 for t in tokens[:-1]]
    assert ranked == sorted(ranked, reverse=True)
    assert meta["unique_tokens"] == len(counts)
    assert corpus.start_id == 1 and corpus.end_id == 2 and corpus.unk_id == len(tokens) - 1


def test_ties_go_to_the_first_seen_token(tmp_path):
    path = tmp_path / "ties.txt"
    path.write_text("zeta alpha mu.\n\nmu zeta alpha.\n", encoding="utf-8")
    corpus = rnnkit.prepare(path, tmp_path / "out", valid_fraction=0, lines=True)
    # Every word appears twice; sentence markers (2 each) count as seen first.
    assert corpus.vocab.tokens == [SENTENCE_START, SENTENCE_END, "zeta", "alpha", "mu", ".", UNKNOWN_TOKEN]


def test_vocab_size_limits_and_unknown(tmp_path, text_file):
    full = rnnkit.prepare(text_file, tmp_path / "full", vocab_size=0, valid_fraction=0)
    corpus = rnnkit.prepare(text_file, tmp_path / "out", vocab_size=6, valid_fraction=0)
    assert corpus.vocab.tokens == full.vocab.tokens[:5] + [UNKNOWN_TOKEN]
    assert corpus.vocab.tokens == ["the", SENTENCE_START, SENTENCE_END, "cat", ".", UNKNOWN_TOKEN]  # cat before . on a tie
    assert corpus.meta["least_frequent_word"] == "." and corpus.meta["least_frequent_count"] == 4
    words = _sentences(corpus)
    assert words == [[t if t in corpus.vocab else UNKNOWN_TOKEN for t in s] for s in _sentences(full)]
    assert words[0] == ["the", "cat", UNKNOWN_TOKEN, UNKNOWN_TOKEN, "the", UNKNOWN_TOKEN, "."]
    assert corpus.meta["splits"]["train"]["unknown"] == sum(s.count(UNKNOWN_TOKEN) for s in words)


def test_markers_always_in_a_tiny_vocabulary(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("a a a a a b b b b c c c .\n", encoding="utf-8")
    corpus = rnnkit.prepare(path, tmp_path / "out", vocab_size=4, valid_fraction=0)
    assert corpus.vocab.tokens == [SENTENCE_START, SENTENCE_END, "a", UNKNOWN_TOKEN]


def test_vocab_size_zero_keeps_everything(tmp_path, text_file):
    corpus = rnnkit.prepare(text_file, tmp_path / "out", vocab_size=0, valid_fraction=0)
    assert corpus.meta["splits"]["train"]["unknown"] == 0
    assert len(corpus.vocab) == corpus.meta["unique_tokens"] + 3


def test_splits_are_deterministic_and_vocabulary_comes_from_train(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(f"sentence number w{i} is here.\n" for i in range(400)), encoding="utf-8")
    a = rnnkit.prepare(path, tmp_path / "a", lines=True, valid_fraction=0.1, test_fraction=0.1, seed=3)
    b = rnnkit.prepare(path, tmp_path / "b", lines=True, valid_fraction=0.1, test_fraction=0.1, seed=3)
    c = rnnkit.prepare(path, tmp_path / "c", lines=True, valid_fraction=0.1, test_fraction=0.1, seed=4)
    assert _sentences(a, "train") == _sentences(b, "train")
    assert _sentences(a, "train") != _sentences(c, "train")
    n = {s: a.num_sentences(s) for s in a.splits}
    assert sum(n.values()) == 400 and 20 < n["valid"] < 60 and 20 < n["test"] < 60
    # Every wN word occurs once, so those in valid/test are unknown: the vocabulary saw only train.
    assert all(s[2] == UNKNOWN_TOKEN for s in _sentences(a, "valid"))
    assert all(s[2] != UNKNOWN_TOKEN for s in _sentences(a, "train"))


def test_ready_made_splits(tmp_path):
    train, valid, test = (tmp_path / f"{n}.txt" for n in ("train", "valid", "test"))
    train.write_text(" the cat <unk> sat \n the dog sat \n", encoding="utf-8")
    valid.write_text(" the bird sat \n", encoding="utf-8")
    test.write_text(" a <unk> cat \n", encoding="utf-8")
    corpus = rnnkit.prepare(train, tmp_path / "out", valid_file=valid, test_file=test, lines=True,
                            tokenizer="whitespace", vocab_size=0, unk_token="<unk>")
    assert corpus.splits == ["train", "valid", "test"]
    assert _sentences(corpus, "train") == [["the", "cat", "<unk>", "sat"], ["the", "dog", "sat"]]
    assert _sentences(corpus, "valid") == [["the", "<unk>", "sat"]]
    assert _sentences(corpus, "test") == [["<unk>", "<unk>", "cat"]]
    assert corpus.vocab.tokens.count("<unk>") == 1 and corpus.vocab.tokens[-1] == "<unk>"
    assert corpus.num_tokens("valid") == 3


def test_char_level(tmp_path):
    path = tmp_path / "chars.txt"
    text = "Hello\nhello world\n\nbye\n"
    path.write_text(text, encoding="utf-8")
    corpus = rnnkit.prepare(path, tmp_path / "out", level="char", valid_fraction=0)
    assert "".join(corpus.decode(corpus.ids("train"))) == text  # the stream is the text, case kept
    assert corpus.vocab.tokens[-1] == "\ufffd" and corpus.start_id is None
    counts = Counter(text)
    assert corpus.vocab.tokens[0] == "l" and counts["l"] == max(counts.values())
    small = rnnkit.prepare(path, tmp_path / "small", level="char", valid_fraction=0, vocab_size=5)
    assert len(small.vocab) == 5 and "\ufffd" in "".join(small.decode(small.ids()))
    reloaded = Vocabulary.load(tmp_path / "out" / "vocab.txt", "\ufffd")  # newline survives vocab.txt
    assert "\n" in reloaded and " " in reloaded


def test_vocab_escapes_round_trip():
    for token in ["a\\b", "\n", "\\n", "\t", "plain", "\\"]:
        assert unescape(escape(token)) == token


def test_csv_multiline_records_and_seed_example(tmp_path):
    path = tmp_path / "comments.csv"
    path.write_text('body,score\n"First line.\nStill the first comment!",3\n'
                    '"What aren\'t you understanding about this?! Nothing.",1\n', encoding="utf-8")
    corpus = rnnkit.prepare(path, tmp_path / "out", valid_fraction=0)
    assert _sentences(corpus) == [["first", "line", "."], ["still", "the", "first", "comment", "!"],
                                  "what are n't you understanding about this ? !".split(), ["nothing", "."]]
    assert corpus.meta["example"]["text"] == "SENTENCE_START first line. SENTENCE_END"


def test_reddit_sample_has_the_seed_sentence(tmp_path):
    corpus = rnnkit.prepare(shared_file("reddit-comments-sample.csv"), tmp_path / "out", valid_fraction=0)
    seed_sentence = "what are n't you understanding about this ? !".split()
    assert seed_sentence in _sentences(corpus)
    assert corpus.vocab.tokens[:2] == [SENTENCE_START, SENTENCE_END]  # as in the seed's [0, ..., 1]


def test_jsonl_gzip_and_stdin(tmp_path, monkeypatch):
    path = tmp_path / "posts.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"title": "x", "content": "Gzipped JSON works. Yes!"}) + "\n\n")
        f.write(json.dumps({"content": "Second record."}) + "\n")
    corpus = rnnkit.prepare(path, tmp_path / "out", field="content", valid_fraction=0)
    assert _sentences(corpus) == [["gzipped", "json", "works", "."], ["yes", "!"], ["second", "record", "."]]
    result = subprocess.run([sys.executable, "-m", "rnnkit", "prepare", "-", "--out", tmp_path / "stdin",
                             "--valid-fraction", "0", "--json"], input="From stdin. Fine.\n", capture_output=True,
                            text=True, check=True)
    summary = json.loads(result.stdout)
    assert summary["sentences"] == 2 and summary["tokens"] == 5


def test_cli_json_summary(run_cli, tmp_path, text_file):
    status, out, _ = run_cli("prepare", text_file, "--out", tmp_path / "out", "--json", "--vocab-size", "8")
    assert status == 0
    summary = json.loads(out)
    for key in ("sentences", "tokens", "unique_tokens", "vocab_size", "least_frequent_word", "least_frequent_count", "out"):
        assert key in summary
    assert summary["vocab_size"] == 8 and summary["out"] == str(tmp_path / "out")


def test_cli_human_report_prints_what_the_seed_prints(run_cli, tmp_path, text_file):
    status, out, _ = run_cli("prepare", text_file, "--out", tmp_path / "out", "--valid-fraction", "0")
    assert status == 0
    assert "Parsed 6 sentences." in out
    assert "Using vocabulary size" in out and "least frequent" in out
    assert "Example sentence: 'SENTENCE_START the cat sat on the mat. SENTENCE_END'" in out


def test_output_files_are_compact_and_memory_mapped(tmp_path, text_file):
    corpus = rnnkit.prepare(text_file, tmp_path / "out", valid_fraction=0)
    ids, offsets = corpus.ids(), corpus.offsets()
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint16 and offsets.dtype == np.int64
    assert offsets[0] == 0 and offsets[-1] == len(ids) == corpus.meta["tokens"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["meta.json", "train.ids.npy", "train.offsets.npy", "vocab.txt"]


# ---------------------------------------------------------------------------------------- bad input

def _cli(*args, input=None):
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], capture_output=True, text=True,
                          input=input)


def _assert_clean_failure(result, *needles):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error:"), result.stderr
    for needle in needles:
        assert needle in lines[0]


def _leftovers(directory):
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_bad_inputs_fail_cleanly(tmp_path, text_file):
    out = tmp_path / "out"
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("text,score\nhello,1\n", encoding="utf-8")
    cases = [
        ((tmp_path / "missing.txt", "--out", out), ["missing.txt", "no such file"]),
        ((empty, "--out", out), ["empty.txt is empty"]),
        ((csv_file, "--out", out), ["no column 'body'", "its columns: text, score", "--column"]),
        ((tmp_path, "--out", out), ["is a directory"]),
        ((text_file, "--out", out, "--vocab-size", "3"), ["vocabulary size of 3 is too small"]),
        ((text_file, "--out", out, "--vocab-size", "1"), ["too small"]),
    ]
    for args, needles in cases:
        _assert_clean_failure(_cli("prepare", *args), *needles)
        assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_undecodable_bytes_say_where_and_replace_goes_on(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Good line.\nCaf\xe9 au lait.\n".encode("latin-1"))
    result = _cli("prepare", path, "--out", tmp_path / "out")
    _assert_clean_failure(result, "line 2", "byte 14", "not valid UTF-8", "--encoding-errors replace")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
    result = _cli("prepare", path, "--out", tmp_path / "out", "--encoding-errors", "replace", "--valid-fraction", "0")
    assert result.returncode == 0
    assert "caf\ufffd" in PreparedCorpus.open(tmp_path / "out").vocab


def test_existing_output_needs_force(tmp_path, text_file):
    out = tmp_path / "out"
    rnnkit.prepare(text_file, out)
    _assert_clean_failure(_cli("prepare", text_file, "--out", out), "already exists", "--force")
    assert _cli("prepare", text_file, "--out", out, "--force", "--vocab-size", "9").returncode == 0
    assert len(PreparedCorpus.open(out).vocab) == 9
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    _assert_clean_failure(_cli("prepare", text_file, "--out", precious, "--force"), "did not write")
    assert (precious / "thesis.tex").read_text() == "keep me"


def test_failure_midway_leaves_previous_output_intact(tmp_path, text_file):
    out = tmp_path / "out"
    rnnkit.prepare(text_file, out, vocab_size=9)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine.\n" * 1000 + b"\xff\xfe broken\n")
    with pytest.raises(RnnkitError, match="line 1001"):
        rnnkit.prepare(bad, out, force=True)
    assert len(PreparedCorpus.open(out).vocab) == 9
    assert _leftovers(tmp_path) == []


def test_open_rejects_what_is_not_a_prepared_corpus(tmp_path):
    with pytest.raises(RnnkitError, match="not a prepared corpus"):
        PreparedCorpus.open(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(RnnkitError, match="corrupt"):
        PreparedCorpus.open(tmp_path)
    (tmp_path / "meta.json").write_text('{"format": "something-else"}')
    with pytest.raises(RnnkitError, match="not an rnnkit prepared corpus"):
        PreparedCorpus.open(tmp_path)


def test_missing_split_is_a_clear_error(tmp_path, text_file):
    corpus = rnnkit.prepare(text_file, tmp_path / "out", valid_fraction=0)
    with pytest.raises(RnnkitError, match="no 'valid' split"):
        corpus.ids("valid")


def test_parallel_workers_give_the_same_corpus(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(f"Paragraph {i} starts. It has w{i % 37} and \"quotes\" (w{i % 11}).\n\n"
                            for i in range(3000)), encoding="utf-8")
    one = rnnkit.prepare(path, tmp_path / "one", workers=1, vocab_size=30)
    two = rnnkit.prepare(path, tmp_path / "two", workers=2, vocab_size=30)
    assert one.vocab.tokens == two.vocab.tokens
    for split in one.splits:
        assert np.array_equal(one.ids(split), two.ids(split))
        assert np.array_equal(one.offsets(split), two.offsets(split))


def test_prepare_shows_the_bytes_read_on_request(tmp_path, capsys):
    path = tmp_path / "big.txt"
    path.write_text("The cat sat on the mat. The dog saw the cat.\n" * 60_000, encoding="utf-8")  # 2.57 MiB
    rnnkit.prepare(path, tmp_path / "out", progress=True)
    err = capsys.readouterr().err
    assert "reading" in err and "B/s" in err and "2.57M/2.57M" in err  # all of it, in MiB
    rnnkit.prepare(path, tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("level", ["char", "word"])
def test_split_tail_keeps_the_end_of_the_text_contiguous(tmp_path, level):
    rng = np.random.default_rng(0)
    words = "the cat dog sat on a mat log bird saw".split()
    lines = [" ".join(rng.choice(words, rng.integers(2, 9))) + " ." for _ in range(400)]
    path = tmp_path / "t.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = rnnkit.prepare(path, tmp_path / "out", level=level, lines=True, valid_fraction=0.1, test_fraction=0.05,
                            split_tail=True, vocab_size=0)
    sizes = {split: len(corpus.ids(split)) for split in ("train", "valid", "test")}
    total = sum(sizes.values())
    assert abs(sizes["valid"] / total - 0.10) < 0.02 and abs(sizes["test"] / total - 0.05) < 0.02
    decode = lambda split: corpus.vocab.decode(corpus.ids(split).tolist())  # noqa: E731
    if level == "char":  # the splits, in order, are the text itself
        assert "".join(decode("train") + decode("valid") + decode("test")) == path.read_text()
    else:  # the last sentences, in order
        n_test = len(corpus.offsets("test")) - 1
        assert " ".join(t for t in decode("test") if not t.startswith("SENTENCE_")) == " ".join(lines[-n_test:])
    assert corpus.meta["settings"]["split_tail"] is True
