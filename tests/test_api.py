"""``rnnkit.train``: one call trains each kind, the kind read off the data, and returns the model."""

from __future__ import annotations

import pytest

import rnnkit
from rnnkit import LanguageModel, RnnkitError, Seq2Seq
from rnnkit.rank.model import Ranker

QUIET = {"log": lambda _: None, "progress": False, "max_steps": 2}


def test_train_reads_the_kind_off_the_data_and_returns_the_model(tiny_models, tmp_path):
    lm = rnnkit.train(tiny_models / "corpus", tmp_path / "lm", recipe="seed", hidden=4, engine="numpy", **QUIET)
    assert isinstance(lm, LanguageModel) and lm.summary["steps"] == 2 and lm.score(["the cat ."])[0].tokens > 0
    corpus = rnnkit.PreparedCorpus.open(tiny_models / "corpus")  # an open corpus is a corpus too
    assert isinstance(rnnkit.train(corpus, tmp_path / "lm2", recipe="seed", hidden=4, **QUIET), LanguageModel)
    ranker = rnnkit.train(tiny_models / "rank-data", tmp_path / "ranker", model="dual-encoder", hidden=4, embedding=4,
                          batch_size=4, engine="numpy", **QUIET)
    assert isinstance(ranker, Ranker) and len(ranker.rank("the cat", ["a dog", "the cat sat"])) == 2
    s2s = rnnkit.train(tiny_models / "pairs", tmp_path / "s2s", hidden=4, embedding=4, batch_size=4, decode_pairs=0,
                       engine="numpy", **QUIET)
    assert isinstance(s2s, Seq2Seq) and len(s2s.translate(["the cat"])) == 1
    assert repr(s2s).startswith(f"Seq2Seq({str(tmp_path / 's2s')!r}, lstm, hidden 4, attention general")  # not <…at 0x>
    one_file = rnnkit.train(tiny_models / "pairs" / "train.tsv", tmp_path / "s2s-file", hidden=4, embedding=4,
                            batch_size=4, decode_pairs=0, **QUIET)
    assert isinstance(one_file, Seq2Seq)


def test_data_of_no_kind_is_one_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="cannot tell which kind.*pass kind="):
        rnnkit.train(tmp_path / "notes.txt", tmp_path / "m")
    with pytest.raises(RnnkitError, match="does not exist"):
        rnnkit.train(tmp_path / "missing", tmp_path / "m")
    with pytest.raises(RnnkitError, match="unknown model kind"):
        rnnkit.train(tmp_path / "notes.txt", tmp_path / "m", kind="gpt")
    assert not (tmp_path / "m").exists()


def test_every_trained_model_has_a_card_that_says_what_it_is(tiny_models, tmp_path, run_cli):
    from rnnkit.io.card import file_digest

    runs = {"lm": (tiny_models / "corpus", "train.ids.npy", {"recipe": "seed", "hidden": 4}),
            "ranker": (tiny_models / "rank-data", "train.csv", {"model": "dual-encoder", "hidden": 4, "embedding": 4}),
            "seq2seq": (tiny_models / "pairs", "train.tsv", {"hidden": 4, "embedding": 4, "decode_pairs": 0})}
    for kind, (data, train_file, options) in runs.items():
        model = rnnkit.train(data, tmp_path / kind, **options, **QUIET)
        card = (tmp_path / kind / "README.md").read_text(encoding="utf-8")
        assert card.startswith(f"# {kind}\n") and f"rnnkit {rnnkit.__version__}" in card
        assert f"sha256 `{file_digest(data / train_file)}`" in card and str(data) in card
        assert f"| valid_loss | {model.summary['valid_loss']:,.4f}".rstrip("0") in card
        call = f"rnnkit.train({str(data)!r}, {str(tmp_path / kind)!r}, "  # no command line ran it: the call did
        assert f"```python\n{call}" in card and "max_steps=2" in card and "log=" not in card
    status, _, _ = run_cli("seq2seq", "train", tiny_models / "pairs", "--out", tmp_path / "cli", "--hidden", "4",
                           "--max-steps", "2", "--decode-pairs", "0")
    card = (tmp_path / "cli" / "README.md").read_text(encoding="utf-8")
    assert status == 0 and f"rnnkit seq2seq train {tiny_models / 'pairs'} --out {tmp_path / 'cli'}" in card
