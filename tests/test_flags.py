"""Every number a flag takes is checked where it is declared (``rnnkit.options``, or
``rnnkit.cli.common.BOUNDS`` for a verb's own flags): a bad one is one line and exit 2, for every
verb, before anything is read or written."""

from __future__ import annotations

import pytest

BAD = [
    (["train", "C", "--out", "O", "--seed", "-1"], "--seed"),
    (["rank", "train", "D", "--out", "O", "--seed", "-1"], "--seed"),
    (["seq2seq", "train", "D", "--out", "O", "--seed", "-1"], "--seed"),
    (["generate", "M", "--seed", "-1"], "--seed"),
    (["train", "C", "--out", "O", "--evaluate-every", "nan"], "finite"),
    (["train", "C", "--out", "O", "--lr", "nan"], "finite"),
    (["train", "C", "--out", "O", "--max-time", "nan"], "finite"),
    (["train", "C", "--out", "O", "--max-time", "inf"], "finite"),
    (["train", "C", "--out", "O", "--lr", "0"], "(0, )"),
    (["train", "C", "--out", "O", "--dropout", "1"], "[0, 1)"),
    (["seq2seq", "translate", "M", "--max-len", "-5"], "--max-len"),
    (["seq2seq", "translate", "M", "--beam", "100000"], "[1, 64]"),
    (["rank", "predict", "M", "--context", "hi", "--top", "0"], "--top"),
    (["rank", "chat", "M", "--responses", "D", "--top", "-3"], "--top"),
    (["serve", "lm=M", "--port", "99999"], "[1, 65535]"),
    (["serve", "lm=M", "--port", "-1"], "--port"),
    (["serve", "lm=M", "--max-body-bytes", "-1"], "--max-body-bytes"),
    (["serve", "lm=M", "--max-sentences", "0"], "--max-sentences"),
    (["serve", "lm=M", "--batch-window-ms", "-5"], "--batch-window-ms"),
    (["serve", "lm=M", "--batch-window-ms", "1e12"], "[0, 1000]"),  # every /score would wait past its deadline
    (["serve", "lm=M", "--deadline", "1e300"], "--deadline"),
    (["serve", "lm=M", "--deadline", "0"], "--deadline"),
    (["serve", "lm=M", "--max-connections", "1"], "--max-connections"),
    (["serve", "lm=M", "--head-timeout", "1e9"], "--head-timeout"),
    (["serve", "lm=M", "--keep-alive", "nan"], "--keep-alive"),
    (["serve", "lm=M", "--max-work", "1e3"], "--max-work"),
    (["fit-cache", "M", "P", "--window", "0"], "--window"),
    (["gradcheck", "--h", "-1"], "--h"),
    (["train", "C", "--out", "O", "--hidden", "12.5"], "whole number"),
]


@pytest.mark.parametrize("args, named", BAD, ids=[" ".join(a[:2] + a[-2:]) for a, _ in BAD])
def test_a_bad_number_is_one_line_and_exit_2(run_cli, tmp_path, monkeypatch, args, named):
    monkeypatch.chdir(tmp_path)  # nothing may appear here
    status, out, err = run_cli(*args)
    assert status == 2 and named in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


def test_good_numbers_still_parse():
    from rnnkit.cli import build_parser

    args = build_parser().parse_args(["serve", "lm=M", "--port", "8080", "--batch-window-ms", "0"])
    assert args.port == 8080 and args.batch_window_ms == 0.0
    args = build_parser().parse_args(["generate", "M", "--seed", "0", "--temperature", "0.5", "--top-p", "1"])
    assert (args.seed, args.temperature, args.top_p) == (0, 0.5, 1.0)


def test_every_training_verb_logs_to_stderr_and_keeps_stdout_for_its_summary(run_cli, tiny_models, tmp_path):
    """So that ``rnnkit rank train ... > summary.txt`` holds the summary alone, as ``train`` does."""
    runs = {
        "train": ["train", tiny_models / "corpus", "--recipe", "seed", "--hidden", "4", "--engine", "numpy"],
        "rank": ["rank", "train", tiny_models / "rank-data", "--model", "dual-encoder", "--hidden", "4",
                 "--embedding", "4", "--batch-size", "4", "--engine", "numpy"],
        "seq2seq": ["seq2seq", "train", tiny_models / "pairs", "--hidden", "4", "--embedding", "4",
                    "--batch-size", "4", "--decode-pairs", "0", "--engine", "numpy"],
    }
    for name, args in runs.items():
        status, out, err = run_cli(*args, "--out", tmp_path / name, "--max-steps", "3", "--evaluate-every", "1")
        assert status == 0, err
        assert len(out.strip().splitlines()) == 1, f"{name}: {out}"  # the summary
        assert "valid" in err.lower() or "step" in err.lower(), f"{name}: nothing logged: {err}"


def test_every_verb_that_suggests_encoding_errors_takes_it(run_cli, tiny_models, tmp_path):
    """The advice for bytes that are not UTF-8 names a flag only where the verb has it."""
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 on a mat\nthe cat sat\n")
    chat = tmp_path / "chat.txt"
    chat.write_bytes(b"a: caf\xe9 hi\nb: hello there\na: how are you\nb: fine thanks\n")
    m = tiny_models
    verbs = [["score", m / "lm", bad], ["rerank", m / "lm", bad], ["tokenize", "--file", bad],
             ["prepare", bad, "--out", tmp_path / "corpus"], ["rank", "build", chat, "--out", tmp_path / "rank"],
             ["rank", "predict", m / "ranker", "--context", "hi", "--candidates", bad],
             ["seq2seq", "translate", m / "seq2seq", bad]]
    for args in verbs:
        status, _, err = run_cli(*args)
        assert status == 2 and "not valid UTF-8" in err and "--encoding-errors replace" in err, (args, err)
        status, _, err = run_cli(*args, "--encoding-errors", "replace")
        assert "unrecognized arguments" not in err and "not valid UTF-8" not in err, (args, err)

    data = tmp_path / "rank-data"  # a dataset a trainer reads: the advice is to convert it
    data.mkdir()
    for name in ("train.csv", "valid.csv"):
        (data / name).write_bytes((m / "rank-data" / name).read_bytes() + b"\"caf\xe9\",\"x\",1\n")
    status, _, err = run_cli("rank", "train", data, "--out", tmp_path / "r", "--max-steps", "1")
    assert status == 2 and "not valid UTF-8" in err and "iconv" in err and "--encoding-errors" not in err, err


def test_every_verb_and_sub_verb_prints_its_help(capsys):
    """Walk the whole command: ``--help`` and ``-h`` of each verb end with its help, status 0 (an
    unescaped ``%`` in one help text once made ``rnnkit rank --help`` raise a TypeError)."""
    import argparse

    from rnnkit.cli import build_parser, main

    def walk(parser, path):
        yield path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])

    verbs = list(walk(build_parser(), []))
    assert ["rank"] in verbs and ["rank", "chat"] in verbs and ["seq2seq", "train"] in verbs and len(verbs) > 25
    for path in verbs:
        for flag in ("--help", "-h"):
            with pytest.raises(SystemExit) as done:
                main([*path, flag])
            out, err = capsys.readouterr()
            assert done.value.code == 0 and "usage: rnnkit" in out and err == "", (path, err)
