"""Every number a flag takes is checked in one place (``rnnkit.cli.common.BOUNDS``): a bad one is
one line and exit 2, for every verb, before anything is read or written."""

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
