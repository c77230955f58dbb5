"""The retrieval chatbot: dialogues, the UDC layout, Recall@k, the dual encoder in both engines."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

import rnnkit
from rnnkit import RnnkitError
from rnnkit.data.batching import pad_batch
from rnnkit.models.numpy.gradcheck import check_gradients
from rnnkit.models.schema import init_params
from rnnkit.rank.build import DISTRACTORS, build_dataset
from rnnkit.rank.config import RankerConfig
from rnnkit.rank.data import PairBatch
from rnnkit.rank.dialogue import chat_dialogues, play_dialogues, plays
from rnnkit.rank.metrics import recall_report, recall_values
from rnnkit.rank.numpy_engine import NumpyDualEncoder
from rnnkit.rank.train import train_ranker
from tests.conftest import resume_counted

WORDS = ("crown sword letter ring horse ship castle forest wine bread gold silver storm music garden tower "
         "river moon star battle feast grave rose lamp gate bridge church market hill cloak mask").split()

PLAY = """THE TRAGEDY OF NOBODY

PERSONS REPRESENTED.

Claudius, King of Denmark.
Horatio, Friend to Hamlet.

ACT I.

Scene I. Elsinore. A platform.

[Enter Bernardo.]

Ber.
Who's there?

FRANCISCO
Nay, answer me: stand,
and unfold yourself.

Ber.
Long live the king!

[Exit Francisco.]

Bernardo still speaks after the direction.

SCENE II. A room.

HAMLET.
O, that this too too solid flesh would melt. [Aside.]

Hor.
Hail to your lordship!
"""


def test_a_play_becomes_scenes_of_speeches():
    scenes = play_dialogues("nobody", PLAY)
    assert [[t.speaker for t in s.turns] for s in scenes] == [["Ber", "FRANCISCO", "Ber"], ["HAMLET", "Hor"]]
    first = scenes[0].turns
    assert first[1].text == "Nay, answer me: stand, and unfold yourself."  # a speech's lines joined
    assert first[2].text == "Long live the king! Bernardo still speaks after the direction."
    assert scenes[1].turns[0].text == "O, that this too too solid flesh would melt."  # directions dropped


def test_a_chat_log_becomes_conversations():
    log = ["ann: hi there", "ann: are you around?", "bob: yes", "", "", "bob: bye", "ann: bye now"]
    first, second = chat_dialogues("log.txt", log)
    assert [(t.speaker, t.utterances) for t in first.turns] == [("ann", ["hi there", "are you around?"]),
                                                               ("bob", ["yes"])]
    assert len(second.turns) == 2
    with pytest.raises(RnnkitError, match="line 1 is not a turn"):
        chat_dialogues("bad.txt", ["no colon here"])
    with pytest.raises(RnnkitError, match="holds no dialogue of two turns"):
        chat_dialogues("short.txt", ["ann: alone", "", "bob: alone too"])


def _play_text(name: str, rng: np.random.Generator, scenes: int = 5, speeches: int = 10) -> str:
    """A play whose speeches are random words: every turn distinct."""
    lines = [name.upper(), "", "ACT I.", ""]
    for s in range(scenes):
        lines += [f"Scene {s + 1}. A room.", ""]
        for i in range(speeches):
            lines += ["HAMLET." if i % 2 else "Hor.", " ".join(rng.choice(WORDS, 5)), ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def small_plays():
    rng = np.random.default_rng(0)
    return plays({f"play{i}_gut.txt": _play_text(f"play{i}", rng) for i in range(10)})


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.reader(f))


def test_the_built_splits_share_no_play_and_follow_the_udc_layout(tmp_path, small_plays):
    meta = build_dataset(small_plays, tmp_path / "d", context_turns=3, seed=1)
    units = [set(s["units"]) for s in meta["splits"].values()]
    assert not (units[0] & units[1] or units[0] & units[2] or units[1] & units[2])
    assert len(units[1]) == len(units[2]) == 1 and len(units[0]) == 8
    train, valid, test = (_rows(tmp_path / "d" / f"{s}.csv") for s in ("train", "valid", "test"))
    assert train[0] == ["Context", "Utterance", "Label"]
    assert [r[2] for r in train[1:]] == ["1", "0"] * (len(train[1:]) // 2)  # half true, half random
    assert valid[0] == ["Context", "Ground Truth Utterance"] + [f"Distractor_{i}" for i in range(9)]
    for row in valid[1:] + test[1:]:
        assert len(row) == 2 + DISTRACTORS and len(set(row[1:])) == 10  # the truth and 9 distinct others
        assert row[0].endswith("__eot__") and all(c.endswith("__eou__") for c in row[1:])
    assert len(valid) - 1 == meta["splits"]["valid"]["examples"] == 5 * 9  # every turn but a scene's first
    build_dataset(small_plays, tmp_path / "again", context_turns=3, seed=1)
    assert all((tmp_path / "d" / f).read_bytes() == (tmp_path / "again" / f).read_bytes()
               for f in ("train.csv", "valid.csv", "test.csv"))  # deterministic


@pytest.mark.slow
def test_the_plays_of_the_default_corpus_build(tmp_path):
    from rnnkit.rank.dialogue import shakespeare_plays

    try:
        dialogues = shakespeare_plays()
    except RnnkitError as e:
        if "could not fetch" in str(e):
            pytest.skip(f"no network: {e}")
        raise
    assert len({d.source for d in dialogues}) == 37 and sum(len(d.turns) for d in dialogues) > 25_000
    meta = build_dataset(dialogues, tmp_path / "d")
    splits = meta["splits"]
    assert {len(s["units"]) for s in splits.values()} == {4, 29}
    assert splits["train"]["rows"] == 2 * splits["train"]["examples"] > 40_000


def test_recall_at_k_on_known_ranks():
    scores = np.array([[5.0, 1, 2, 3, 4, 0, 0, 0, 0, 0],    # the truth ranks 1st
                       [2.0, 5, 1, 1, 1, 1, 1, 1, 1, 1],    # 2nd
                       [1.0, 9, 8, 7, 6, 5, 4, 3, 2, 0],    # 9th
                       [1.0, 1, 0, 0, 0, 0, 0, 0, 0, 0]])   # tied with one other: 1st or 2nd, half each
    assert recall_values(scores, 1).tolist() == [1, 0, 0, 0.5]
    assert recall_values(scores, 2).tolist() == [1, 1, 0, 1]
    report = recall_report(scores, bootstrap=200)
    assert report["R@1"] == pytest.approx(1.5 / 4) and report["R@5"] == pytest.approx(3 / 4)
    assert report["R@1_of_2"] == pytest.approx((1 + 0 + 0 + 0.5) / 4) and report["examples"] == 4
    low, high = report["intervals"]["R@1"]
    assert 0 <= low <= report["R@1"] <= high <= 1


def _pairs(objective: str, seed: int = 0) -> PairBatch:
    """Four pairs: labelled (``binary``), or for in-batch negatives (``in-batch``), and then with two
    hard negatives for each context (``hard``)."""
    rng = np.random.default_rng(seed)
    c, c_mask = pad_batch([rng.integers(0, 20, n) for n in (5, 3, 1, 7)])
    r, r_mask = pad_batch([rng.integers(0, 20, n) for n in (2, 4, 3, 1)])
    batch = PairBatch(c, c_mask, r, r_mask, np.array([1, 0, 1, 0]) if objective == "binary" else None)
    if objective == "hard":
        h, h_mask = pad_batch([rng.integers(0, 20, n) for n in (3, 1, 6, 2, 2, 4, 1, 5)])
        batch.negatives, batch.negative_mask = h.reshape(2, 4, -1), h_mask.reshape(2, 4, -1)
    return batch


VARIANTS = [{}, {"bidirectional": True}, {"pooling": "max"}, {"bag": True},
            {"cell": "gru", "bidirectional": True, "pooling": "max", "layers": 2, "bag": True}]


def _dual_encoder(seed: int = 1, **options) -> NumpyDualEncoder:
    config = RankerConfig("dual-encoder", 20, hidden=4, embedding=3, dtype="float64", **{"dropout": 0.0, **options})
    params = init_params(config, np.random.RandomState(seed))
    params["M"] += np.random.RandomState(seed + 1).uniform(-0.5, 0.5, params["M"].shape)  # not just the identity
    return NumpyDualEncoder(config, params)


OBJECTIVES = ["binary", "in-batch", "hard"]


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("options", VARIANTS, ids=["plain", "bidirectional", "max", "bag", "gru-bi-max-2-bag"])
def test_the_dual_encoder_passes_the_gradient_check(objective, options):
    model = _dual_encoder(**options)
    batch = _pairs(objective)
    _, grads = model.loss_and_grads(batch)
    # h = 1e-5, not the seed's 1e-3: with embeddings this small, a one-word text's bag of words is a
    # short vector, and its normalisation curves too sharply for a step of 1e-3 (float64 keeps 1e-5 exact enough).
    # Central differences are then exact to ~2e-10 absolute, so a gradient below 1e-5 is compared absolutely.
    errors = check_gradients(model.params, lambda: model.loss(batch), grads, h=1e-5, floor=1e-5)
    assert set(errors) == set(model.params) and max(errors.values()) < 1e-4


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("options", VARIANTS, ids=["plain", "bidirectional", "max", "bag", "gru-bi-max-2-bag"])
def test_numpy_and_torch_give_the_same_scores_and_gradients(objective, options):
    torch = pytest.importorskip("torch")
    from rnnkit.models.torch import build

    model = _dual_encoder(**options)
    fast = build(model.config, model.params)
    batch = _pairs(objective, seed=3)
    tensors = [torch.from_numpy(a) for a in (batch.contexts, batch.context_mask, batch.responses, batch.response_mask)]
    c, r = (model.encode(x, m)[0] for x, m in ((batch.contexts, batch.context_mask),
                                               (batch.responses, batch.response_mask)))
    np.testing.assert_allclose(fast.encode(*tensors[:2]).detach().numpy(), c, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose((fast.encode(*tensors[:2]) @ fast.M * fast.encode(*tensors[2:])).sum(1).detach(),
                               model.scores(c, r), rtol=1e-10, atol=1e-12)
    loss, grads = model.loss_and_grads(batch)
    labels_tensor = None if batch.labels is None else torch.from_numpy(batch.labels.astype(np.float64))
    negatives = [torch.from_numpy(a) for a in batch.negatives_flat() or ()]
    fast_loss = fast(*tensors, labels_tensor, *negatives)
    fast_loss.backward()
    assert fast_loss.item() == pytest.approx(loss, rel=1e-12)
    for name, param in fast.named_parameters():
        expected = grads[fast.canonical(name)]
        assert np.abs(param.grad.numpy() - expected).max() <= 1e-10 * np.abs(expected).max(), name


# ------------------------------------------------------------------------------ training and use

def _keyword_data(tmp_path, seed: int = 0):
    """A ranking dataset whose true response repeats the context's keyword: learnable in seconds."""
    rng = np.random.default_rng(seed)
    dialogues = []
    for n in range(300):
        a, b = rng.choice(WORDS, 2, replace=False)
        dialogues.append([f"ann: where is the {a} ?", f"bob: the {a} is by the {b} .", f"ann: and the {b} ?",
                          f"bob: the {b} ? ask the {a} .", ""])
    path = tmp_path / "chat.txt"
    path.write_text("\n".join(line for d in dialogues for line in d), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def keyword_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rank")
    path = _keyword_data(tmp)
    from rnnkit.cli import main

    assert main(["rank", "build", str(path), "--out", str(tmp / "data"), "--context-turns", "2"]) == 0
    return tmp / "data"


@pytest.mark.parametrize("engine", ["numpy", pytest.param("torch", marks=pytest.mark.slow)])
def test_a_small_dual_encoder_trained_for_seconds_beats_random(tmp_path, keyword_data, engine):
    if engine == "torch":
        pytest.importorskip("torch")
    summary = train_ranker(keyword_data, tmp_path / "m", model="in-batch", engine=engine, hidden=16, lr=0.01,
                           batch_size=16, epochs=10, log=lambda _: None)  # about a second
    report = rnnkit.rank.evaluate_ranker(tmp_path / "m", keyword_data, split="test", engine=engine)
    assert summary["valid_R@1"] > 0.3
    assert report["intervals"]["R@1"][0] > 0.1  # random is 0.1 in 1-of-10: beaten beyond the interval


@pytest.mark.parametrize("hard", [0, 1], ids=["in-batch", "hard-negatives"])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, keyword_data, steps_taken, hard):
    # keep="last": the interrupted run also evaluated where it stopped, so its best may differ; the
    # trajectory may not (nor the hard negatives drawn: an epoch's are drawn before its first batch)
    options = dict(model="combined", engine="numpy", hidden=6, batch_size=8, lr=0.01, evaluate_every=0.1,
                   eval_rows=20, dropout=0.2, keep="last", hard_negatives=hard, log=lambda _: None)
    train_ranker(keyword_data, tmp_path / "whole", max_steps=30, **options)
    train_ranker(keyword_data, tmp_path / "parts", max_steps=13, **options)
    resume_counted(tmp_path / "parts", steps_taken,
                   lambda: train_ranker(keyword_data, tmp_path / "parts", max_steps=30, resume=True, **options))
    from rnnkit.io.modeldir import load_model

    whole, parts = load_model(tmp_path / "whole").params, load_model(tmp_path / "parts").params
    assert all(np.array_equal(whole[k], parts[k]) for k in whole)


def test_the_cli_builds_trains_evaluates_and_predicts(run_cli, tmp_path, keyword_data, monkeypatch):
    status, out, err = run_cli("rank", "train", keyword_data, "--out", tmp_path / "tfidf", "--model", "tfidf",
                               "--json")
    assert status == 0, err
    assert json.loads(out)["valid_R@1"] > 0.3  # the keyword is a shared word: TF-IDF finds it
    status, out, _ = run_cli("rank", "evaluate", tmp_path / "tfidf", keyword_data, "--json")
    report = json.loads(out)
    assert status == 0 and set(report) >= {"R@1", "R@2", "R@5", "R@1_of_2", "intervals", "examples"}
    assert all(isinstance(report[k], float) for k in ("R@1", "R@2", "R@5", "R@1_of_2"))
    assert report["R@1"] <= report["R@2"] <= report["R@5"] and report["examples"] == 90  # 30 conversations x 3
    (tmp_path / "cands.txt").write_text("the sword is lost .\nthe horse is by the lamp .\n", encoding="utf-8")
    status, out, _ = run_cli("rank", "predict", tmp_path / "tfidf", "--context", "where is the horse ?",
                             "--candidates", tmp_path / "cands.txt", "--json")
    assert status == 0 and json.loads(out)["ranked"][0]["text"] == "the horse is by the lamp ."
    status, out, err = run_cli("rank", "train", keyword_data, "--out", tmp_path / "de", "--model", "dual-encoder",
                               "--hidden", "8", "--max-steps", "5", "--eval-rows", "20")
    assert status == 0 and "valid R@1" in out, err
    monkeypatch.setattr("rnnkit.rank.model.SAY_FROM", 10)  # the first chat was silent for two minutes
    said = []
    for _ in range(2):  # the second query reads the repository's encodings from the cache
        status, out, err = run_cli("rank", "predict", tmp_path / "de", "--context", "where is the horse ?",
                                   "--responses", keyword_data, "--top", "3")
        assert status == 0 and len(out.splitlines()) == 3
        said.append("responses, once (kept in" in err and "encoded in" in err)
    assert said == [True, False]
    assert len(list((tmp_path / "de" / "cache").glob("responses-*.npy"))) == 1


def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path, keyword_data):
    def fails(*args, says):
        status, out, err = run_cli(*args)
        assert status == 2 and says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.csv").write_text("text,reply\na,b\n", encoding="utf-8")
    (bad / "valid.csv").write_text("x\n", encoding="utf-8")
    fails("rank", "train", bad, "--out", tmp_path / "m", "--model", "tfidf",
          says="has no columns 'Context', 'Utterance', 'Label' (its columns: text, reply)")
    assert not (tmp_path / "m").exists()
    (bad / "train.csv").write_text('Context,Utterance,Label\n"  ",b,1\n', encoding="utf-8")
    fails("rank", "train", bad, "--out", tmp_path / "m", says="row 2 has an empty context or response")
    (bad / "train.csv").write_text('Context,Utterance,Label\nhi,hello,1\nhow are you,fine\n', encoding="utf-8")
    fails("rank", "train", bad, "--out", tmp_path / "m", says="line 3 has 2 fields where the header has 3")
    (bad / "train.csv").write_text('Context,Utterance,Label\nhi,hello,0\nhow are you,fine,0\n', encoding="utf-8")
    fails("rank", "train", bad, "--out", tmp_path / "m", says="no true response (no row with label 1)")
    (tmp_path / "one.txt").write_text("only one candidate\n", encoding="utf-8")
    run_cli("rank", "train", keyword_data, "--out", tmp_path / "r", "--model", "random")
    fails("rank", "predict", tmp_path / "r", "--context", "hello", "--candidates", tmp_path / "one.txt",
          says="at least 2 candidates")
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    fails("rank", "build", tmp_path / "empty.txt", "--out", tmp_path / "d", says="holds no dialogue")
    fails("score", tmp_path / "r", says="is a ranker (made by `rnnkit rank train`), not a language model")
    lm = tmp_path / "lm"
    (tmp_path / "t.txt").write_text("a b c .\n" * 50, encoding="utf-8")
    rnnkit.prepare(tmp_path / "t.txt", tmp_path / "c", lines=True)
    from rnnkit.lm import train

    train(tmp_path / "c", lm, recipe="seed", hidden=4, max_steps=2, log=lambda _: None)
    fails("rank", "predict", lm, "--context", "hi", "--candidates", tmp_path / "one.txt",
          says="is a language model (made by `rnnkit train`), not a ranker")


# ------------------------------------------------------------------------------ BM25


def _bm25(documents: list[str]):
    from rnnkit.rank.data import TextIds
    from rnnkit.rank.model import BM25Ranker
    from rnnkit.text.pipeline import TextPipeline
    from rnnkit.text.vocab import build_vocabulary

    ids = TextIds(TextPipeline(), build_vocabulary([d.split() for d in documents], 0), 100, 80)
    return BM25Ranker.fit(RankerConfig("bm25", len(ids.vocab)), ids, [d.split() for d in documents])


def test_bm25_scores_a_hand_computed_example():
    """Four documents, 14 tokens: avgdl 3.5; 'cat' is in 3 of 4, so idf = ln(1 + 1.5/3.5). For 'a cat
    sat' (3 tokens, 'cat' once): idf · 1 / (1 + 1.5 · (0.25 + 0.75 · 3/3.5))."""
    ranker = _bm25(["a cat sat", "a dog ran a", "the cat", "dog dog cat x y"])
    assert ranker.avgdl == 3.5
    expected = np.log(1 + 1.5 / 3.5) / (1 + 1.5 * (0.25 + 0.75 * 3 / 3.5))
    assert ranker.score(["cat"], ["a cat sat"])[0] == pytest.approx(expected, rel=1e-12)
    assert ranker.score(["cat"], ["a dog ran a"])[0] == 0.0  # no shared word
    assert ranker.score(["cat cat"], ["a cat sat"])[0] == pytest.approx(2 * expected, rel=1e-12)  # each query token


def test_bm25_agrees_with_bm25s():
    """The same scores as the bm25s library's (Lucene's idf and formula) over its own index."""
    bm25s = pytest.importorskip("bm25s")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    documents = [" ".join(rng.choice(words, rng.integers(2, 15))) for _ in range(60)]
    ranker = _bm25(documents)
    vocab = {w: i for i, w in enumerate(sorted({w for d in documents for w in d.split()}))}
    index = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    index.index(bm25s.tokenization.Tokenized(ids=[[vocab[w] for w in d.split()] for d in documents], vocab=vocab),
                show_progress=False)
    for query in ("w1 w2", "w3 w3 w17 w39", "w0"):
        ours = ranker.score([query] * len(documents), documents)
        np.testing.assert_allclose(ours, index.get_scores([vocab[w] for w in query.split()]), rtol=1e-5, atol=1e-7)


def test_bm25_trains_saves_and_ranks(tmp_path, keyword_data):
    summary = train_ranker(keyword_data, tmp_path / "bm25", model="bm25", log=lambda _: None)
    ranker = rnnkit.load(tmp_path / "bm25")
    assert type(ranker).__name__ == "BM25Ranker" and summary["valid_R@1"] > 0.1
    ranked = ranker.rank("where is the crown ?", ["the sword is by the tower .", "the crown is by the ring ."])
    assert ranked[0]["text"] == "the crown is by the ring ." and ranked[0]["score"] > ranked[1]["score"]


# ------------------------------------------------------------------------------ the chit-chat corpus

CHITCHAT = {
    "c1": {"messages": [[{"text": "Hello", "sender": "a"}, {"text": "how  are\tyou?", "sender": "a"}],
                        [{"text": "fine, thanks", "sender": "b"}], [{"text": "  ", "sender": "a"}],
                        [{"text": "and you?", "sender": "b"}], [{"text": "good", "sender": "a"}]]},
    "c2": {"messages": [[{"text": "anyone there?", "sender": "x"}], [{"text": "hello?", "sender": "x"}]]},
    **{f"d{i}": {"messages": [[{"text": f"where is thing {i} ?", "sender": "p"}],
                              [{"text": f"thing {i} is here", "sender": "q"}]]} for i in range(40)},
}


def test_chitchat_conversations_become_dialogues_of_two_speakers():
    from rnnkit.rank.dialogue import chitchat_dialogues

    dialogues, lonely = chitchat_dialogues(CHITCHAT)
    assert lonely == 1 and len(dialogues) == 41  # c2 has one speaker
    first = dialogues[0]
    # a blank message is dropped, and the turns around it (both b's) become one; spaces made single
    assert [(t.speaker, t.utterances) for t in first.turns] == [
        ("a", ["Hello", "how are you?"]), ("b", ["fine, thanks", "and you?"]), ("a", ["good"])]


def test_rank_build_chitchat_writes_the_udc_layout_split_by_conversation(tmp_path, run_cli, monkeypatch):
    from rnnkit.data import corpora

    (tmp_path / "chitchat.json").write_text(json.dumps(CHITCHAT), encoding="utf-8")
    monkeypatch.setattr(corpora, "get", lambda name: tmp_path / "chitchat.json")
    status, out, err = run_cli("rank", "build", "--chitchat", "--out", tmp_path / "d", "--seed", "3",
                               "--valid-fraction", "0.3", "--test-fraction", "0.3")
    assert status == 0, err
    assert "left out 1 conversations with one speaker" in out
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    units = [set(s["units"]) for s in meta["splits"].values()]
    assert not (units[0] & units[1] or units[0] & units[2] or units[1] & units[2])  # no conversation in two
    assert meta["left_out"] == {"one speaker": 1} and meta["split_by"] == "dialogue"
    rows = [row for split in ("train", "valid", "test") for row in _rows(tmp_path / "d" / f"{split}.csv")[1:]]
    contexts = {row[0] for row in rows}
    assert "Hello __eou__ how are you? __eou__ __eot__" in contexts  # c1's first turn, as the UDC writes it
    assert "Hello __eou__ how are you? __eou__ __eot__ fine, thanks __eou__ and you? __eou__ __eot__" in contexts
    assert all(c.endswith("__eou__ __eot__") for c in contexts)
    assert all(r.endswith("__eou__") and "__eot__" not in r for row in rows for r in row[1:] if not r.isdigit())
    status, _, err = run_cli("rank", "build", "--chitchat", "--shakespeare", "--out", tmp_path / "e")
    assert status == 2 and "one of them" in err


# ------------------------------------------------------------------------------ the chatbot


def test_rank_chat_answers_each_turn_from_the_repository(run_cli, tmp_path, keyword_data, monkeypatch):
    """Over a pipe: one turn per line in, one JSON answer per line out, each a training response.
    TF-IDF finds the keyword: asked about the horse, the bot answers about the horse. (The second
    answer reads the whole conversation, horse included.)"""
    import io

    from rnnkit.rank.chat import plain
    from rnnkit.rank.data import training_responses

    assert run_cli("rank", "train", keyword_data, "--out", tmp_path / "tfidf", "--model", "tfidf")[0] == 0
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"where is the horse ?\nand the castle ?\n")))
    status, out, err = run_cli("rank", "chat", tmp_path / "tfidf", "--responses", keyword_data, "--top", "3")
    assert status == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    repository = {plain(r) for r in training_responses(keyword_data)}
    assert [a["turn"] for a in answers] == ["where is the horse ?", "and the castle ?"]
    assert all(a["answer"] in repository and len(a["ranked"]) == 3 for a in answers)
    assert "horse" in answers[0]["answer"]
    assert [r["score"] for r in answers[0]["ranked"]] == sorted((r["score"] for r in answers[0]["ranked"]),
                                                                 reverse=True)


def test_rank_chat_refuses_bad_input_in_one_line(run_cli, tmp_path, keyword_data, tiny_models, monkeypatch):
    import io

    assert run_cli("rank", "train", keyword_data, "--out", tmp_path / "tfidf", "--model", "tfidf")[0] == 0
    for stdin, args, says in (
            ("hello\n\n", (tmp_path / "tfidf", "--responses", keyword_data), "an empty turn"),
            ("hello\n", (tiny_models / "lm", "--responses", keyword_data), "is a language model"),
            ("hello\n", (tmp_path / "tfidf", "--responses", keyword_data, "--top", "0"), "--top: 0 is too small"),
            ("hello\n", (tmp_path / "tfidf", "--responses", tmp_path), "train.csv")):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        status, _, err = run_cli("rank", "chat", *args)
        assert status == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_rank_chat_reads_stdin_as_utf8_or_as_told(run_cli, tmp_path, keyword_data, monkeypatch):
    """Bad bytes on stdin were replaced silently (Python hands them over as lone surrogates): now
    one line naming the line, or replaced as --encoding-errors says, as every verb that reads text."""
    import io

    assert run_cli("rank", "train", keyword_data, "--out", tmp_path / "tfidf", "--model", "tfidf")[0] == 0
    turns = b"where is the horse ?\nand the \xff castle ?\n"
    for errors, status_wanted in (("strict", 2), ("replace", 0)):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(turns), errors="surrogateescape"))
        status, out, err = run_cli("rank", "chat", tmp_path / "tfidf", "--responses", keyword_data,
                                   "--encoding-errors", errors)
        assert status == status_wanted, err
        if errors == "strict":
            assert "stdin line 2 is not valid UTF-8" in err and len(err.strip().splitlines()) == 1
        else:
            assert [json.loads(line)["turn"] for line in out.splitlines()][1] == "and the \ufffd castle ?"


def test_rank_predict_reads_its_candidates_from_a_pipe(run_cli, tmp_path, keyword_data):
    """``--candidates <(printf 'a\\nb\\n')``: a pipe has no size before it is read; it is not "empty"."""
    import os
    import threading

    assert run_cli("rank", "train", keyword_data, "--out", tmp_path / "tfidf", "--model", "tfidf")[0] == 0
    pipe = tmp_path / "candidates"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_text("the sword is lost .\nthe horse is by the lamp .\n"))
    writer.start()
    status, out, err = run_cli("rank", "predict", tmp_path / "tfidf", "--context", "where is the horse ?",
                               "--candidates", pipe, "--json")
    writer.join()
    assert status == 0, err
    assert json.loads(out)["ranked"][0]["text"] == "the horse is by the lamp ."


class _SharedWords:
    """Ranks by how many of a response's words the context holds: the echo always wins."""

    def rank_repository(self, context, responses, top):
        from rnnkit.rank.similar import words

        held = set(words(context))
        scores = [sum(w in held for w in words(r)) for r in responses]
        ranked = sorted(range(len(responses)), key=lambda i: (-scores[i], i))[:top]
        return [{"text": responses[i], "score": float(scores[i])} for i in ranked]


def test_a_conversation_never_repeats_a_turn_however_punctuated():
    """The person's words and the bot's own answers are both left out, however they are spelt; the
    context holds each turn as it was said."""
    from rnnkit.rank.chat import Conversation, context_of

    repository = ["Do you have any pets? __eou__", "do you have any OTHER pets ?? __eou__",
                  "I have a dog __eou__ called rex __eou__", "a dog? cool __eou__", "hi __eou__"]
    bot = Conversation(_SharedWords(), repository)
    assert [r["plain"] for r in bot.reply("do you have any pets?", top=2)] == ["I have a dog called rex",
                                                                               "a dog? cool"]
    assert bot.reply("what kind of dog?")[0]["plain"] == "a dog? cool"  # not its own answer again, nor an echo
    assert bot.turns == ["do you have any pets?", "I have a dog called rex", "what kind of dog?", "a dog? cool"]
    assert context_of(bot.turns, 2) == "what kind of dog? __eou__ __eot__ a dog? cool __eou__ __eot__"
    with pytest.raises(RnnkitError, match="no response that does not repeat"):
        bot.reply("hi")  # every response left repeats a turn: the pets, the dog, the greeting
    with pytest.raises(RnnkitError, match="text= is empty"):
        bot.reply("  ")
    with pytest.raises(RnnkitError, match="text="):
        bot.reply(123)  # was an AttributeError
    assert len(bot.turns) == 4  # a refused turn changes nothing
    from rnnkit.rank.chat import answer

    with pytest.raises(RnnkitError, match="turns= must be a list of texts, not one text"):
        answer(_SharedWords(), repository, "do you have any pets?")  # not read as a list of characters


def test_near_duplicates_are_found_by_their_words():
    from rnnkit.rank.similar import deduplicated, normalised, repeats, word_sets

    assert normalised("Hi, how are YOU?!  __eou__") == normalised("hi how are you") == "hi how are you"
    assert normalised("I'm fine.") == "i'm fine" and normalised("😂") == "😂"
    earlier = word_sets(["do you have any pets?"])
    assert repeats("Do you have any other pets?", earlier)  # 5 of 6 words
    assert repeats("do you have any pets", earlier) and not repeats("i love dogs, do you?", earlier)  # 2 of 6
    assert deduplicated(["Hi, how are you?", "yes", "hi how are you", "HI! HOW ARE YOU?", "Yes."]) == (
        "Hi, how are you?", "yes")


def test_the_bot_does_not_say_again_what_it_said():
    """Its own answers, not the person's: a response sharing two content words and a third of the
    smaller text's with one of the bot's answers says it again, however many other words it has;
    stop words and contractions do not count, nor does answering on the person's topic."""
    from rnnkit.rank.chat import Conversation
    from rnnkit.rank.similar import content_words, says_again

    said = [content_words("Im studying Computer Science with an emphasis in animation. What about you?")]
    assert content_words("I'm in the computer science program, and you?") == {"computer", "science", "program"}
    assert says_again("Computer Science with an emphasis in animation Whats yours?", said)
    assert says_again("Oh that's so cool! What does he do? Yes! Well Sort of.. I'm in the computer science animation "
                      "emphasis", said)  # 4 of its 8 content words
    assert not says_again("i like science fiction", said)  # one word shared
    assert not says_again("what about you? what do you think?", said)  # stop words only
    repository = ["I study computer science __eou__", "computer science is my major too __eou__",
                  "I love computer games __eou__", "do you have pets? __eou__"]
    bot = Conversation(_SharedWords(), repository)
    assert bot.reply("what do you study? computer science?")[0]["plain"] == "I study computer science"
    # "computer science is my major too" would say it again: its content words are two of its three
    assert bot.reply("cool, computer science is fun")[0]["plain"] == "I love computer games"
    assert bot.reply("games, nice")[0]["plain"] == "do you have pets?"


def test_the_bot_s_repository_holds_each_response_once_however_spelt(tmp_path):
    from rnnkit.rank.data import training_responses

    log = tmp_path / "chat.txt"
    log.write_text("\n\n".join(f"a: hello {n}\nb: {reply}\na: ok {n}\nb: bye {n}" for n, reply in
                                enumerate(["Hi, how are you?", "hi how are you", "Hi! How are you??"] * 14)),
                   encoding="utf-8")
    from rnnkit.cli import main

    assert main(["rank", "build", str(log), "--out", str(tmp_path / "data"), "--valid-fraction", "0.2",
                 "--test-fraction", "0.2"]) == 0
    repository = training_responses(tmp_path / "data")
    assert sum("how are you" in r.lower() for r in repository) == 1 and len(repository) == len(set(repository))


@pytest.mark.slow
def test_hard_negatives_teach_a_ranker_not_to_echo(tmp_path, keyword_data):
    """On the keyword dialogues the person's own question shares every word with the context, the
    true answer only some: trained on random negatives alone, a ranker prefers the true answer to
    the echo no more often than a coin would; trained with the context's own turns among its
    negatives, nearly always."""
    from rnnkit.rank.chat import turns_of
    from rnnkit.rank.data import read_eval

    contexts, candidates = read_eval(keyword_data, "test")
    echoes = [turns_of(c)[-1] + " __eou__" for c in contexts]
    truths = [c[0] for c in candidates]
    preferred = {}
    for hard in (0, 2):
        train_ranker(keyword_data, tmp_path / str(hard), model="in-batch", bag=True, engine="numpy", hidden=16,
                     lr=0.01, batch_size=16, epochs=6, hard_negatives=hard, log=lambda _: None)
        ranker = rnnkit.load(tmp_path / str(hard), engine="numpy")
        preferred[hard] = float((ranker.score(contexts, truths) > ranker.score(contexts, echoes)).mean())
    assert preferred[0] < 0.6 and preferred[2] > 0.95, preferred  # measured: 0.49 and 1.0


# ------------------------------------------------------------------------------ the hybrid


def test_the_mix_is_fitted_where_the_right_weight_is_known():
    """Learned scores that are noise and lexical ones that find the truth: the lexical weight must
    dominate; the reverse: it must be about 0 (at most a sixteenth of the scores' spread, where
    chance on 500 rows may still favour a little noise)."""
    from rnnkit.rank.model import fit_mix

    rng = np.random.default_rng(0)
    noise, truth = rng.normal(size=(500, 10)), rng.normal(size=(500, 10))
    truth[:, 0] += 3.0  # the true response (column 0) scores higher
    assert fit_mix(noise, truth) >= 8 * noise.std() / truth.std()
    assert fit_mix(truth, noise) <= truth.std() / noise.std() / 16


@pytest.mark.parametrize("lexical", ["tfidf", "bm25"])
def test_a_hybrid_trains_fits_its_mix_and_answers_on_both_engines(tmp_path, keyword_data, lexical):
    pytest.importorskip("torch")
    summary = train_ranker(keyword_data, tmp_path / "h", model="hybrid", lexical=lexical, engine="torch", hidden=8,
                           batch_size=16, max_steps=10, eval_rows=60, log=lambda _: None)
    ranker = rnnkit.load(tmp_path / "h", engine="numpy")
    assert type(ranker).__name__ == "HybridRanker" and ranker.config.mix == summary["mix"] > 0
    assert summary["valid_R@1"] >= summary["valid_R@1_learned"]  # the mix is chosen on that sample
    context, candidates = "where is the crown ?", ["the crown is by the ring .", "the sword is by the tower ."]
    by_numpy = ranker.score([context] * 2, candidates)
    np.testing.assert_allclose(rnnkit.load(tmp_path / "h", engine="torch").score([context] * 2, candidates), by_numpy,
                               rtol=1e-4)
    expected = ranker.dual.score([context] * 2, candidates) + ranker.config.mix * ranker.lexical.score([context] * 2,
                                                                                                         candidates)
    np.testing.assert_allclose(by_numpy, expected, rtol=1e-12)
    best = ranker.rank_repository(context, candidates, top=1)  # the repository path gives the same scores
    assert best[0]["score"] == pytest.approx(max(by_numpy), rel=1e-5)


def test_the_prior_weight_is_fitted_where_the_right_weight_is_known():
    """Rows where each candidate carries a popularity that has nothing to do with the context: the
    prior taking it away (weight 1) ranks best; where the "popularity" is noise, no weight pays."""
    from rnnkit.rank.model import best_weight
    from rnnkit.rank.train import PRIOR_WEIGHTS

    rng = np.random.default_rng(0)
    fit, popular = rng.normal(size=(500, 100)), 3.0 * rng.normal(size=(500, 100))
    fit[:, 0] += 3.0  # the true response (column 0) fits its context better
    assert 0.75 <= best_weight(fit + popular, -popular, PRIOR_WEIGHTS) <= 1.25
    assert best_weight(fit, -popular, PRIOR_WEIGHTS) == 0.0


@pytest.mark.parametrize("lexical", ["tfidf", "bm25"])
def test_the_prior_takes_the_average_context_s_score_on_every_path_and_is_saved(tmp_path, keyword_data, lexical):
    """s(c, r) − λ·s(c̄, r): pairs, rows and a repository give the same scores, on both engines, and
    a model directory keeps the prior (one without its arrays is refused in one line)."""
    pytest.importorskip("torch")
    from rnnkit.io.modeldir import load_model, save_model
    from rnnkit.rank.model import with_prior
    from rnnkit.rank.train import PRIOR_WEIGHTS

    summary = train_ranker(keyword_data, tmp_path / "h", model="hybrid", lexical=lexical, engine="torch", hidden=8,
                           batch_size=16, max_steps=10, eval_rows=60, log=lambda _: None)
    fit = summary["prior_fit"]  # weighed on the 60 validation rows, one batch of 60
    assert fit["one_of"] == 60 and fit["R@1_with"] >= fit["R@1_without"] and fit["weight"] in PRIOR_WEIGHTS
    files = load_model(tmp_path / "h")
    trained = rnnkit.load(tmp_path / "h", engine="numpy")  # with the prior its training fitted, if any paid
    before = trained.dual.average
    rng = np.random.default_rng(0)
    context, query = rng.normal(size=trained.config.width), rng.random(trained.config.vocab_size)

    def weighing(weight: float):
        return with_prior(type(trained)(replace(trained.config, prior=weight), trained.dual, trained.lexical),
                          context, query)

    hybrid, weighed = weighing(0.0), weighing(0.5)
    contexts = ["where is the crown ?", "and the ring ?"]
    responses = ["the crown is by the ring .", "the sword is by the tower .", "the ring ? ask the moon ."]
    pairs = [(c, r) for c in contexts for r in responses]
    typical = (hybrid.engine.score_matrix(context[None].astype(np.float32), hybrid.dual.encode_responses(responses))[0]
               + hybrid.config.mix * (hybrid.lexical.documents(responses) @ query))
    scores = weighed.score([c for c, _ in pairs], [r for _, r in pairs])
    np.testing.assert_allclose(scores, hybrid.score([c for c, _ in pairs], [r for _, r in pairs])
                               - 0.5 * np.tile(typical, len(contexts)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weighed.score_one(contexts[0], responses), scores[:3], rtol=1e-5, atol=1e-5)
    assert trained.dual.average is before  # the ranker they were made from is unchanged

    saved = replace(files, config=replace(files.config, prior=0.5),
                    params={**files.params, "prior.context": context, "prior.query": query})  # in place of its own
    save_model(tmp_path / "p", saved)
    for engine in ("numpy", "torch"):
        loaded = rnnkit.load(tmp_path / "p", engine=engine)
        assert loaded.config.prior == 0.5
        np.testing.assert_allclose(loaded.score([c for c, _ in pairs], [r for _, r in pairs]), scores, rtol=1e-4,
                                   atol=1e-4)
    save_model(tmp_path / "q", replace(saved, params={k: v for k, v in files.params.items() if "prior" not in k}))
    with pytest.raises(RnnkitError, match="has no weight 'prior.context'"):
        rnnkit.load(tmp_path / "q")
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    config["model"]["prior"] = -1.0  # a weight no fit gives: it would reward what suits every context
    (tmp_path / "p" / "config.json").write_text(json.dumps(config))
    with pytest.raises(RnnkitError, match=r"prior = -1.0, which is not a finite number in \[0, \)"):
        rnnkit.load(tmp_path / "p")


# ------------------------------------------------------------------------------ the reranker


def _reranker(seed: int = 1, **options) -> NumpyDualEncoder:
    config = RankerConfig("reranker", 20, hidden=4, embedding=3, dtype="float64", objective="in-batch",
                          match_hidden=5, match_negatives=1, **{"dropout": 0.0, **options})
    params = init_params(config, np.random.RandomState(seed))
    params["x.u"] *= 5  # a head that already scores: its share of the gradients is not lost in rounding
    return NumpyDualEncoder(config, params)


def test_the_matching_head_passes_the_gradient_check_at_its_states():
    """The head alone, its errors at both sides' states, with padded steps that must get none."""
    from rnnkit.rank.matching import match, match_backward

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 3, 2))
    mask_a = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)
    mask_b = np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0]], bool)
    params = {"x.Q": rng.normal(size=(16, 5)), "x.q": rng.normal(size=5), "x.u": rng.normal(size=5)}
    weights = rng.normal(size=3)  # L = Σ w_p s_p
    _, kept = match(params, A, mask_a, B, mask_b)
    grads: dict = {}
    dA, dB = match_backward(params, kept, weights, grads)
    assert not dA[~mask_a].any() and not dB[~mask_b].any()
    loss = lambda: float(match(params, A, mask_a, B, mask_b)[0] @ weights)  # noqa: E731
    errors = check_gradients({"A": A, "B": B, **params}, loss, {"A": dA, "B": dB, **grads}, h=1e-6)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("options", [{}, {"bidirectional": True, "pooling": "max", "bag": True},
                                     {"cell": "gru", "layers": 2}], ids=["plain", "bi-max-bag", "gru-2"])
def test_the_reranker_passes_the_gradient_check_and_the_engines_agree(options):
    model = _reranker(**options)
    batch = _pairs("hard", seed=3)
    loss, grads = model.loss_and_grads(batch)
    head = ["x.Q", "x.q", "x.u"]
    encoder = [k for k in model.params if k not in head and k != "idf"]  # idf: fitted, not trained
    assert set(grads) == {*head, *encoder}
    errors = check_gradients(model.params, lambda: model.loss(batch), grads, h=1e-5, names=head, floor=1e-5)
    # the head sends no error into the states: the encoder's gradients are the dual encoder's loss's alone
    dual = NumpyDualEncoder(replace(model.config, model="hybrid"), model.params)
    errors |= check_gradients(model.params, lambda: dual.loss(batch), grads, h=1e-5, names=encoder, floor=1e-5)
    assert max(errors.values()) < 1e-4, errors
    assert loss > dual.loss(batch)  # … and the head's loss joins the reranker's
    assert all(np.abs(grads[k]).max() > 1e-6 for k in ("x.Q", "x.q", "x.u"))  # the head learns
    torch = pytest.importorskip("torch")
    from rnnkit.models.torch import build

    fast = build(model.config, model.params)
    fast_loss = fast(*[torch.from_numpy(a) for a in (batch.contexts, batch.context_mask, batch.responses,
                                                     batch.response_mask)], None,
                     *[torch.from_numpy(a) for a in batch.negatives_flat()])
    fast_loss.backward()
    assert fast_loss.item() == pytest.approx(loss, rel=1e-12)
    for name, param in fast.named_parameters():
        expected = grads[fast.canonical(name)]
        assert np.abs(param.grad.numpy() - expected).max() <= 1e-10 * np.abs(expected).max(), name


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_a_reranker_trains_weighs_its_stages_and_reads_its_shortlist_again(tmp_path, keyword_data, engine):
    if engine == "torch":
        pytest.importorskip("torch")
    summary = train_ranker(keyword_data, tmp_path / "r", model="reranker", engine=engine, hidden=16, lr=0.01,
                           batch_size=16, epochs=10, rerank_top=2, log=lambda _: None)
    ranker = rnnkit.load(tmp_path / "r", engine=engine)
    assert type(ranker).__name__ == "RerankingRanker" and ranker.config.rerank_mix == summary["rerank_mix"]
    assert summary["valid_R@1"] >= max(summary["valid_R@1_hybrid"], summary["valid_R@1_head"]) - 1e-12
    report = rnnkit.rank.evaluate_ranker(tmp_path / "r", keyword_data, split="test", engine=engine)
    assert report["intervals"]["R@1"][0] > 0.3  # random is 0.1 in 1-of-10
    context = "where is the crown ?"
    candidates = ["the crown is by the ring .", "the sword is by the tower .", "the ship ? ask the moon ."]
    scores = ranker.score([context] * 3, candidates)  # the head plus rerank_mix times the hybrid
    expected = ranker.match_rows([context], [candidates])[0] + ranker.config.rerank_mix * ranker.first.score(
        [context] * 3, candidates)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    first = ranker.first.score_one(context, candidates)  # the hybrid's: its best two are read again
    shortlist = {candidates[i] for i in np.argsort(-first)[:2]}
    ranked = ranker.rank_repository(context, candidates, top=1)
    assert ranked[0]["text"] in shortlist
    assert ranked[0]["score"] == pytest.approx(max(s for c, s in zip(candidates, scores) if c in shortlist), rel=1e-5)


def test_hard_negatives_need_in_batch_negatives(tmp_path, keyword_data):
    with pytest.raises(RnnkitError, match="--hard-negatives join a batch's in-batch negatives"):
        train_ranker(keyword_data, tmp_path / "m", model="dual-encoder", hard_negatives=1, log=lambda _: None)
    assert not (tmp_path / "m").exists()
    with pytest.raises(RnnkitError, match=r"--hard-negatives \(hard_negatives=\)"):
        train_ranker(keyword_data, tmp_path / "m", hard_negatives=17, log=lambda _: None)
