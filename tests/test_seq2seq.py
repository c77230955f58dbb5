"""Sequence to sequence with attention: the numpy reference, the torch twin, decoding, the verbs."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest

from rnnkit import RnnkitError
from rnnkit.models.engine import open_engine
from rnnkit.models.numpy.gradcheck import check_gradients
from rnnkit.models.schema import init_params
from rnnkit.seq2seq.baselines import Lexicon
from rnnkit.seq2seq.config import ATTENTION, Seq2SeqConfig
from rnnkit.seq2seq.data import Pairs
from rnnkit.seq2seq.decode import beam_search, greedy, looping, window_mask
from rnnkit.seq2seq.metrics import cer_by_length, loops, scores
from rnnkit.seq2seq.numpy_engine import NumpySeq2Seq

C = 9  # a small vocabulary: 0 start, 1 end, 2.. symbols


def _model(attention: str, cell: str = "gru", seed: int = 1, feed: bool = False,
           layers: int = 1) -> tuple[Seq2SeqConfig, dict[str, np.ndarray]]:
    config = Seq2SeqConfig(C, cell=cell, hidden=3, embedding=4, attention=attention, attention_size=5, dtype="float64",
                           input_feeding=feed, encoder_layers=layers, dropout=0.0)
    return config, init_params(config, np.random.RandomState(seed))


def _batch(seed: int = 0):
    """Two sources (the second padded) and two targets (the second padded)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, C, (2, 5))
    x_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    y_in, y_out = rng.integers(0, C, (2, 4)), rng.integers(1, C, (2, 4))
    y_mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    return x, x_mask, y_in, y_out, y_mask


@pytest.mark.parametrize("attention", [a for a in ATTENTION if a != "none"])
def test_attention_weights_sum_to_one_over_real_positions_and_skip_padding(attention):
    config, params = _model(attention)
    model = NumpySeq2Seq(config, params)
    x, x_mask, y_in, _, _ = _batch()
    x[1, 3:] = 7  # whatever the padding holds, it gets no weight
    _, head = model.decode(y_in, model.encode(x, x_mask))
    np.testing.assert_allclose(head.weights.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(head.weights[1, :, 3:] == 0.0) and np.all(head.weights[1, :, :3] > 0.0)


FED = [(a, "gru", True, 1) for a in ATTENTION] + [("general", "lstm", True, 1), ("none", "lstm", True, 1)]
STACKED = [("general", "gru", False, 2), ("additive", "lstm", True, 3)]  # encoder layers


@pytest.mark.parametrize("attention,cell,feed,layers", [(a, "gru", False, 1) for a in ATTENTION]
                         + [("general", "lstm", False, 1), ("additive", "lstm", False, 1)] + FED + STACKED)
def test_gradient_check(attention, cell, feed, layers):
    """Every weight's hand-written gradient against central differences (float64), the encoder,
    the decoder's first state, attention and output included; with input feeding, the error that
    each h̃ sends back through the next step's input too; with stacked encoder layers, through
    each layer below the top."""
    config, params = _model(attention, cell, feed=feed, layers=layers)
    model = NumpySeq2Seq(config, params)
    batch = _batch()
    _, grads = model.loss_and_grads(*batch)
    assert set(grads) == set(params)
    # Central differences at h=1e-5 carry rounding noise of about ε·L/h ≈ 1e-10, as large as 1e-4
    # of a gradient near 1e-6 (an additive score's query weights, through a near-flat softmax):
    # below |g| = 1e-5 the comparison is absolute (1e-4 × 1e-5).
    worst = check_gradients(params, lambda: model.loss(*batch), grads, h=1e-5, floor=1e-5)
    assert max(worst.values()) < 1e-4, worst


@pytest.mark.parametrize("attention,cell,feed,layers",
                         [(a, "gru", False, 1) for a in ATTENTION] + [("dot", "lstm", False, 1)] + FED + STACKED)
def test_torch_agrees_with_numpy_on_loss_and_gradients(attention, cell, feed, layers):
    torch = pytest.importorskip("torch")
    from rnnkit.models.torch import build

    config, params = _model(attention, cell, feed=feed, layers=layers)
    loss, grads = NumpySeq2Seq(config, params).loss_and_grads(*_batch())
    module = build(config, params)
    theirs = module(*(torch.from_numpy(a) for a in _batch()))
    theirs.backward()
    assert theirs.item() == pytest.approx(loss, rel=1e-12)
    for name, param in module.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), grads[module.canonical(name)], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("engine,feed", [("numpy", False), ("torch", False), ("numpy", True), ("torch", True)])
def test_beam_of_one_is_greedy_and_wider_beams_score_at_least_as_well(engine, feed):
    if engine == "torch":
        pytest.importorskip("torch")
    config, params = _model("general", seed=3, feed=feed)
    decoder = open_engine(config, params, engine=engine)
    x, x_mask, *_ = _batch(5)
    args = (decoder, x, x_mask, 0, 1, 12)
    plain, one, five = greedy(*args), beam_search(*args, 1), beam_search(*args, 5)
    for g, b in zip(plain, one):
        assert g.ids == b.ids
        np.testing.assert_allclose(g.weights, b.weights)
    assert all(f.per_token >= b.per_token - 1e-9 for f, b in zip(five, one))


@pytest.mark.parametrize("engine,feed", [("numpy", False), ("numpy", True), ("torch", True)])
def test_decoding_step_by_step_scores_as_training_does(engine, feed):
    """The decoding step, fed the target token by token, gives the teacher-forced loss: the step
    that decodes and the pass that trains are one model (h̃ carried from step to step in both)."""
    if engine == "torch":
        pytest.importorskip("torch")
    config, params = _model("general", seed=6, feed=feed)
    x, x_mask, y_in, y_out, y_mask = _batch(7)
    decoder = open_engine(config, params, engine=engine)
    encoded = decoder.encode(x, x_mask)
    state, total = encoded.state, 0.0
    for t in range(y_in.shape[1]):
        log_probs, state, _ = decoder.step(y_in[:, t], state, encoded)
        total -= float((log_probs[np.arange(len(x)), y_out[:, t]] * y_mask[:, t]).sum())
    assert total == pytest.approx(NumpySeq2Seq(config, params).loss(x, x_mask, y_in, y_out, y_mask), rel=1e-6)


@pytest.mark.parametrize("feed", [False, True])
def test_a_padded_source_decodes_as_it_does_alone(feed):
    config, params = _model("additive", seed=4, feed=feed)
    decoder = open_engine(config, params, engine="numpy")
    x, x_mask, *_ = _batch(2)
    together = greedy(decoder, x, x_mask, 0, 1, 10)[1]
    alone = greedy(decoder, x[1:, :3], x_mask[1:, :3], 0, 1, 10)[0]
    assert together.ids == alone.ids
    np.testing.assert_allclose(together.weights[:, :3], alone.weights, atol=1e-12)


def test_metrics_on_a_hand_made_example():
    result = scores(["the kyng is dead", "long live"], ["the king is dead", "long live the king"])
    assert result["cer"] == pytest.approx((1 + 9) / (16 + 18))  # one substitution; nine characters missing
    assert result["word_accuracy"] == pytest.approx((3 + 2) / (4 + 4))
    assert 0.0 < result["bleu"] < 100.0
    buckets = cer_by_length(["ab", "a" * 25], ["ab", "b" * 25], ["ab", "a" * 25])
    assert [(b["from"], b["pairs"], b["cer"]) for b in buckets] == [(0, 1, 0.0), (20, 1, 1.0)]


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_a_window_keeps_each_step_near_the_last_one_s_focus(engine):
    if engine == "torch":
        pytest.importorskip("torch")
    assert window_mask(np.array([[0.1, 0.0, 0.7, 0.2, 0, 0, 0]]), (1, 2)).tolist() == \
        [[False, True, True, True, True, False, False]]
    config, params = _model("general", seed=12)
    decoder = open_engine(config, params, engine=engine)
    x = np.random.default_rng(4).integers(2, C, (3, 40))
    mask = np.ones_like(x, bool)
    for plain, beamed in zip(greedy(decoder, x, mask, 0, 1, 30, window=(2, 4)),
                             beam_search(decoder, x, mask, 0, 1, 30, 1, window=(2, 4))):
        assert plain.ids == beamed.ids
        for last, now in zip(plain.weights[:-1], plain.weights[1:]):
            focus = int(last.argmax())
            outside = np.r_[now[:max(focus - 2, 0)], now[focus + 5:]]
            # a softmax gives every position some weight: only the window makes it exactly 0
            assert np.all(outside == 0.0) and len(outside) and now.sum() == pytest.approx(1.0)


def test_the_lexicon_corrects_only_the_words_it_knows_well():
    lexicon = Lexicon(Pairs(["vp the hill", "vp vp", "goe vp", "to be", "to bee", "to be"],
                            ["up the hill", "up up", "go up", "to be", "to bee", "to bee"]))
    # vp: 4 of 4 "up"; goe: once only; be: "be" 1 of 3 times (not confident)
    assert lexicon.correct(["vp goe be", "vp vp vp vp"], ["op goe bee", "up up"]) == ["up goe bee", "up up"]
    assert lexicon.correct(["goe"], ["gone"], min_count=1) == ["go"]


def test_loops_count_repeats_that_the_source_does_not_have():
    assert loops(["ne", "ne ne ne ne ne", "abc"], ["ne ne ne ne ne", "ne ne ne ne ne", "abcabcabcabc"]) == 2
    assert loops(["ne ne"], ["ne ne ne"]) == 0  # three times is not yet a loop


def test_a_long_line_decodes_without_a_loop():
    """A model that loops (random weights: it says one thing over and over) is kept out of the loop
    on a long crafted line: no 3-gram of output tokens comes 4 times where the source has it once
    at most. Without the guard the same model loops, so the check can fail."""
    config, params = _model("general", seed=11)
    decoder = open_engine(config, params, engine="numpy")
    rng = np.random.default_rng(3)
    x = rng.permutation(np.tile(np.arange(2, C), 9))[None, :60]  # a long source without long repeats
    mask = np.ones_like(x, bool)

    def looped(ids: list[int]) -> bool:
        forbidden = looping(np.array([ids[:-1]]), x, mask, C, end_id=1)
        return forbidden is not None and bool(forbidden[0, ids[-1]])

    def any_loop(ids: list[int]) -> bool:
        return any(looped(ids[:k]) for k in range(1, len(ids) + 1))

    for decoded in (greedy(decoder, x[:, :2], mask[:, :2], 0, 1, 40)[0],  # sources shorter than a 3-gram
                    beam_search(decoder, x[:, :1], mask[:, :1], 0, 1, 40, 2)[0]):
        grams = Counter(tuple(decoded.ids[i:i + 3]) for i in range(len(decoded.ids) - 2))
        assert len(decoded.ids) > 10 and max(grams.values()) < 4
    for guard in (False, True):
        plain = greedy(decoder, x, mask, 0, 1, 80, guard=guard)[0].ids
        beamed = beam_search(decoder, x, mask, 0, 1, 80, 3, guard=guard)[0].ids
        assert len(plain) > 20
        assert any_loop(plain) != guard and any_loop(beamed) != guard


def test_lexicon_takes_each_word_s_most_frequent_spelling():
    lexicon = Lexicon(Pairs(["vp the hill", "vp vp", "goe vp", "one two three"],
                            ["up the hill", "up up", "go up", "one three"]))
    assert lexicon(["goe vp the mountaine"]) == ["go up the mountaine"]


def _copy_pairs(path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = ["".join(rng.choice("abcde") for _ in range(rng.randint(2, 6))) for _ in range(n)]
    path.write_text("".join(f"{s}\t{s}\n" for s in lines), encoding="utf-8")


@pytest.fixture
def copy_data(tmp_path):
    data = tmp_path / "copy"
    data.mkdir()
    _copy_pairs(data / "train.tsv", 1500, 0)
    _copy_pairs(data / "valid.tsv", 100, 1)
    _copy_pairs(data / "test.tsv", 100, 2)
    return data


def test_a_tiny_model_learns_to_copy_in_seconds(copy_data, tmp_path):
    from rnnkit.seq2seq import evaluate_seq2seq, load_seq2seq, train_seq2seq

    train_seq2seq(copy_data, tmp_path / "m", hidden=24, embedding=12, lr=0.01, epochs=5, batch_size=32, dropout=0.0,
                  decode_pairs=0, evaluate_every=1, log=lambda _: None, progress=False)
    model = load_seq2seq(tmp_path / "m")
    assert model.translate(["abc", "eddca"], beam=3) == ["abc", "eddca"]
    report = evaluate_seq2seq(model, copy_data, "test")
    assert report["model"]["cer"] < 0.02 and report["pairs"] == 100
    assert report["baselines"]["copy"]["cer"] == 0.0


def test_the_verbs_end_to_end(copy_data, tmp_path, run_cli):
    out = tmp_path / "model"
    status, stdout, _ = run_cli("seq2seq", "train", copy_data, "--out", out, "--hidden", 8, "--max-steps", 6,
                                "--evaluate-every", 0.05, "--decode-pairs", 5, "--json")
    summary = json.loads(stdout)
    assert status == 0 and summary["steps"] == 6 and "valid_cer" in summary
    (tmp_path / "in.txt").write_text("abc\nbad\n", encoding="utf-8")
    status, stdout, _ = run_cli("seq2seq", "translate", out, tmp_path / "in.txt", "--beam", 2, "--json")
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert status == 0 and [line["source"] for line in lines] == ["abc", "bad"]
    status, stdout, _ = run_cli("seq2seq", "evaluate", out, copy_data, "--json")
    report = json.loads(stdout)
    assert status == 0 and set(report["model"]) == {"cer", "word_accuracy", "bleu"}
    assert set(report["baselines"]) == {"copy", "lexicon"} and report["pairs"] == 100
    assert set(report["model+lexicon"]) == {"cer", "word_accuracy", "bleu"} and report["loops"] >= 0
    status, stdout, _ = run_cli("seq2seq", "attention", out, "abcd", "--plot", tmp_path / "att.png")
    assert status == 0 and (tmp_path / "att.png").read_bytes().startswith(b"\x89PNG")
    fed = tmp_path / "fed"
    status, _, err = run_cli("seq2seq", "train", copy_data, "--out", fed, "--hidden", 8, "--max-steps", 3,
                             "--input-feeding", "--decode-pairs", 2)
    assert status == 0, err
    assert json.loads((fed / "config.json").read_text())["model"]["input_feeding"] is True
    status, stdout, _ = run_cli("seq2seq", "translate", fed, tmp_path / "in.txt", "--unconstrained")
    assert status == 0 and len(stdout.splitlines()) == 2
    status, _, err = run_cli("seq2seq", "train", copy_data, "--out", out, "--hidden", 8, "--max-steps", 8,
                             "--evaluate-every", 0.05, "--decode-pairs", 5, "--resume")
    assert status == 0, err


def test_evaluation_leaves_out_pairs_longer_than_the_model_reads(tiny_models, tmp_path, run_cli):
    """A megabyte pair would cost an edit distance quadratic in its length; no output could match it."""
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    (pairs / "train.tsv").write_bytes((tiny_models / "pairs" / "train.tsv").read_bytes())
    long_line = "the cat sat " * 100_000  # 1.2 MB
    (pairs / "test.tsv").write_text(f"the cat\tTHE CAT\n{long_line}\t{long_line.upper()}\n", encoding="utf-8")
    status, stdout, err = run_cli("seq2seq", "evaluate", tiny_models / "seq2seq", pairs, "--json")
    report = json.loads(stdout)
    assert status == 0 and report["pairs"] == 1 and report["left_out"] == 1, err
    status, stdout, _ = run_cli("seq2seq", "evaluate", tiny_models / "seq2seq", pairs)
    assert status == 0 and "1 pairs; left out 1 longer than the model reads" in stdout


def test_bad_input_is_one_clear_line(copy_data, tmp_path, run_cli, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("one\ttwo\nno tab here\n", encoding="utf-8")
    status, _, err = run_cli("seq2seq", "train", bad, "--out", tmp_path / "m")
    assert status == 2 and "bad.tsv:2: no tab" in err and not (tmp_path / "m").exists()
    bad.write_text("one\t \n", encoding="utf-8")
    status, _, err = run_cli("seq2seq", "train", bad, "--out", tmp_path / "m")
    assert status == 2 and "an empty target" in err
    bad.write_bytes(b"caf\xe9\tcafe\n")
    status, _, err = run_cli("seq2seq", "train", bad, "--out", tmp_path / "m")
    assert status == 2 and "not UTF-8" in err
    bad.write_text("the cat\tTHE CAT\n", encoding="utf-8")  # nothing left to validate on: was a ZeroDivisionError
    status, _, err = run_cli("seq2seq", "train", bad, "--out", tmp_path / "m")
    assert status == 2 and "holds 1 pair" in err and len(err.strip().splitlines()) == 1
    status, _, err = run_cli("seq2seq", "train", copy_data, "--out", tmp_path / "m", "--encoder-layers", "0")
    assert status == 2 and "--encoder-layers: 0 is too small" in err and not (tmp_path / "m").exists()

    from rnnkit.seq2seq import load_seq2seq, train_seq2seq

    train_seq2seq(copy_data, tmp_path / "s2s", hidden=8, encoder_layers=2, max_steps=2, max_source=4, decode_pairs=0,
                  log=lambda _: None, progress=False)
    capsys.readouterr()
    load_seq2seq(tmp_path / "s2s").translate(["abcdefgh"])
    assert "longer than the model's 4 tokens were cut" in capsys.readouterr().err
    status, _, err = run_cli("score", tmp_path / "s2s", "a sentence")
    assert status == 2 and "is a sequence-to-sequence model" in err
    with pytest.raises(RnnkitError, match="an empty source"):
        load_seq2seq(tmp_path / "s2s").translate(["  "])


def test_a_language_model_given_to_translate(tmp_path, run_cli):
    from rnnkit.io.modeldir import ModelFiles, save_model
    from rnnkit.lm.config import LMConfig
    from rnnkit.text.pipeline import TextPipeline
    from rnnkit.text.vocab import Vocabulary

    config = LMConfig("gru", 3, 4)
    save_model(tmp_path / "lm", ModelFiles(config, TextPipeline(), Vocabulary(["a", "b", "UNKNOWN_TOKEN"],
                                                                              "UNKNOWN_TOKEN"), init_params(config)))
    status, _, err = run_cli("seq2seq", "translate", tmp_path / "lm", "-")
    assert status == 2 and "is a language model" in err and "not a sequence-to-sequence model" in err


def test_a_timed_run_resumes_with_its_own_rate_whatever_the_new_budget(copy_data, tmp_path):
    """Resuming, the rate and decay that the first session's budget chose are kept: a timed run
    resumed without --max-time goes on at its schedule, not refused for a "different decay"."""
    from rnnkit.seq2seq import Seq2SeqTrainConfig, train_seq2seq

    resumed = Seq2SeqTrainConfig(max_steps=5, engine="numpy").resolve({"lr": 0.008, "decay": "linear"})
    assert (resumed.lr, resumed.decay) == (0.008, "linear")
    options = dict(hidden=8, embedding=4, decode_pairs=0, engine="numpy", log=lambda _: None, progress=False)
    train_seq2seq(copy_data, tmp_path / "m", max_steps=2, max_time=600, **options)
    summary = train_seq2seq(copy_data, tmp_path / "m", max_steps=4, resume=True, **options)
    training = json.loads((tmp_path / "m" / "config.json").read_text())["training"]
    assert summary["steps"] == 4 and summary["resumed_from"] == 2
    assert (training["lr"], training["decay"]) == (0.008, "linear")


def test_outputs_stop_at_the_length_ratio(tmp_path):
    """A decoder that never ends stops at ratio × the source's length + 10 (or ``max_len``)."""
    from rnnkit.seq2seq.data import Seq2SeqIds
    from rnnkit.seq2seq.model import Seq2Seq
    from rnnkit.text.pipeline import TextPipeline
    from rnnkit.text.vocab import Vocabulary

    config = Seq2SeqConfig(C, cell="gru", hidden=3, embedding=4, dropout=0.0, length_ratio=0.5, max_target=50)
    ids = Seq2SeqIds(TextPipeline("char", lowercase=False),
                     Vocabulary(["SENTENCE_START", "SENTENCE_END", *"abcdef", "\ufffd"], "\ufffd"))
    params = init_params(config, np.random.RandomState(7))
    params["out.b"][1] = -1e4  # the end marker is never chosen
    model = Seq2Seq(config, ids, open_engine(config, params, engine="numpy"))
    for beam in (1, 2):
        short, long = model.decode(["ab", "abcdefabcdefabcdefab"], beam=beam)
        assert (len(short.output_tokens), len(long.output_tokens)) == (11, 20)
        assert len(model.decode(["ab"], max_len=4, beam=beam)[0].output_tokens) == 4


def test_a_timed_run_takes_the_budget_rate_and_others_a_steady_one():
    from rnnkit.seq2seq import Seq2SeqTrainConfig
    from rnnkit.seq2seq.config import BUDGET_RUN
    from rnnkit.trainer.loop import UNBOUNDED_EPOCHS

    timed = Seq2SeqTrainConfig(max_time=900, engine="numpy").resolve()
    steady = Seq2SeqTrainConfig(epochs=2, engine="numpy").resolve()
    chosen = Seq2SeqTrainConfig(max_time=900, lr=0.001, decay="cosine", engine="numpy").resolve()
    bounded = Seq2SeqTrainConfig(max_time=900, epochs=3, engine="numpy").resolve()
    assert (timed.lr, timed.decay, timed.epochs) == (0.008, "linear", UNBOUNDED_EPOCHS)  # its time ends it
    assert (steady.lr, steady.decay, Seq2SeqTrainConfig(engine="numpy").resolve().epochs) == (0.002, "none", 10.0)
    assert {k: getattr(timed, k) for k in BUDGET_RUN} == BUDGET_RUN
    assert (chosen.lr, chosen.decay, bounded.epochs) == (0.001, "cosine", 3)  # what the user gives is kept
