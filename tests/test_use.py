"""Using a trained model: scores, generation, reranking — API and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnkit
from rnnkit import RnnkitError
from rnnkit.compat.tutorial_import import import_tutorial
from rnnkit.lm import train
from rnnkit.lm.generate import adjust
from rnnkit.lm.model import evaluate_model
from rnnkit.lm.nbest import read_nbest
from rnnkit.text.pipeline import TextPipeline

LINES = ["the cat sat on the mat .", "the dog sat on the log .", "a cat saw a dog .", "the dog saw the cat .",
         "a bird sat on a cat .", "the king saw the bird ."]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("use")
    path = tmp / "tiny.txt"
    rng = np.random.default_rng(0)
    path.write_text("\n".join(rng.choice(LINES, 600)) + "\nthe zebra sat .\n", encoding="utf-8")
    corpus = rnnkit.prepare(path, tmp / "tiny", lines=True, valid_fraction=0.1, seed=1, vocab_size=0)
    train(corpus, tmp / "model", recipe="seed", engine="numpy", hidden=16, batch_size=8, optimizer="adam", lr=0.02,
          epochs=3,
          log=lambda _: None)
    return corpus, tmp / "model"


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_next_token_probabilities_sum_to_one(trained, engine):
    model = rnnkit.load(trained[1], engine=engine)
    for prefix in ("", "the cat", "a bird sat on"):
        p = model.next_token_probs(prefix)
        assert p.shape == (len(model.vocab),) and abs(p.sum() - 1) < 1e-6 and (p >= 0).all()


def test_score_over_a_split_equals_evaluate(trained):
    corpus, path = trained
    model = rnnkit.load(path, engine="numpy")
    sentences = [" ".join(corpus.decode(s)) for s in corpus.sentences("valid")]
    scores = model.score(sentences, tokenized=True)
    result = evaluate_model(path, corpus, split="valid", engine="numpy")
    assert sum(s.tokens for s in scores) == result["tokens"]
    assert abs(sum(s.logprob for s in scores) + result["loss"] * result["tokens"]) < 1e-6 * result["tokens"]


def test_engines_give_the_same_scores(trained):
    by_numpy = rnnkit.load(trained[1], engine="numpy").score(LINES + ["an unseen sentence"])
    by_torch = rnnkit.load(trained[1], engine="torch").score(LINES + ["an unseen sentence"])
    for a, b in zip(by_numpy, by_torch):
        assert a.tokens == b.tokens and abs(a.logprob - b.logprob) < 1e-4 * abs(a.logprob)


def test_score_details(trained):
    model = rnnkit.load(trained[1])
    good, bad = model.score(["The cat sat on the mat.", "mat the on sat cat the ."], per_token=True)
    assert good.tokens == 8 and good.logprob > bad.logprob  # 7 tokens + the sentence end
    assert [t for t, _ in good.token_probs] == ["the", "cat", "sat", "on", "the", "mat", ".", "SENTENCE_END"]
    assert abs(sum(np.log(p) for _, p in good.token_probs) - good.logprob) < 1e-6
    assert abs(good.perplexity - np.exp(-good.logprob / good.tokens)) < 1e-9
    # A batch of one against a batch of two: in float32 the BLAS path depends on the batch's shape,
    # so the two agree to float32 precision, not bit for bit.
    assert model.perplexity(["The cat sat on the mat."]) == pytest.approx(good.perplexity, rel=1e-6)


def test_generation_is_seeded_and_never_unknown(trained):
    model = rnnkit.load(trained[1], engine="numpy")
    unk = model.vocab.unk_token
    # Make the unknown token the likeliest word everywhere: it must still never be generated.
    model.engine.model.params["V"][model.vocab.unk_id] += 5.0
    first = model.generate(n=20, seed=3, min_length=3)
    assert first == model.generate(n=20, seed=3, min_length=3)
    assert first != model.generate(n=20, seed=4, min_length=3)
    for sample in first:
        assert unk not in sample["tokens"] and "SENTENCE_START" not in sample["tokens"]
        assert len(sample["tokens"]) >= 3 and sample["text"][0].isupper()


def test_generation_options(trained):
    model = rnnkit.load(trained[1])
    primed = model.generate(n=5, seed=0, prime="the king", min_length=3)
    assert all(s["tokens"][:2] == ["the", "king"] for s in primed)
    greedy = model.generate(n=3, seed=0, top_k=1, min_length=1)
    assert len({s["text"] for s in greedy}) == 1  # top-k 1 is greedy: every sample the same
    with pytest.raises(RnnkitError):
        model.generate(n=0)


def test_adjust_implements_the_sampling_options():
    p = np.array([[0.5, 0.3, 0.15, 0.05]])
    assert np.allclose(adjust(p, banned=[0]), [[0, 0.6, 0.3, 0.1]])
    assert np.allclose(adjust(p, top_k=2), [[0.625, 0.375, 0, 0]])
    assert np.allclose(adjust(p, top_p=0.7), [[0.625, 0.375, 0, 0]])  # 0.5 < 0.7 <= 0.8
    cold = adjust(p, temperature=0.5)
    assert np.allclose(cold, p ** 2 / (p ** 2).sum())
    assert np.array_equal(adjust(p, temperature=1e-300), [[1, 0, 0, 0]])  # greedy, not NaN (found by the HTTP fuzz)
    assert np.allclose(adjust(p, temperature=1e300), 0.25)


def test_detokenize():
    detokenize = TextPipeline().detokenize
    assert detokenize("i do n't know , do you ?".split()) == "I don't know, do you?"
    assert detokenize(["``", "hello", "''", "she", "said", "."]) == '"Hello" she said.'


def test_rerank_picks_the_highest_scoring_candidate(trained):
    model = rnnkit.load(trained[1])
    groups = [["the cat sat on the mat .", "mat the on sat cat the .", "cat the sat"], ["a dog saw a cat .", "dog a"]]
    results = model.rerank(groups)
    for group, result in zip(groups, results):
        scores = [c["logprob"] for c in result["candidates"]]
        assert result["best"] == group[int(np.argmax(scores))] and result["best_index"] == int(np.argmax(scores))
    normed = model.rerank(groups, length_norm=True)
    for result in normed:
        per_token = [c["logprob"] / c["tokens"] for c in result["candidates"]]
        assert result["best_index"] == int(np.argmax(per_token))


def test_read_nbest_formats():
    assert read_nbest(["a b", "b a", "", "", "c", "d", ""]) == [["a b", "b a"], ["c", "d"]]
    assert read_nbest(["1\ta b", "2\tc", "1\tb a"]) == [["a b", "b a"], ["c"]]


def test_cli_score_generate_rerank(trained, run_cli, tmp_path):
    path = trained[1]
    sentences = tmp_path / "s.txt"
    sentences.write_text("the cat sat on the mat .\n\nmat the on sat cat the .\n", encoding="utf-8")
    status, out, _ = run_cli("score", path, sentences, "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and len(rows) == 3
    assert {"text", "logprob", "tokens", "perplexity"} <= set(rows[0])
    assert rows[2]["tokens"] == rows[0]["tokens"] + rows[1]["tokens"]
    assert abs(rows[2]["perplexity"] - np.exp(-(rows[0]["logprob"] + rows[1]["logprob"]) / rows[2]["tokens"])) < 1e-9
    status, out, _ = run_cli("generate", path, "-n", "4", "--seed", "1", "--min-length", "3", "--json")
    samples = json.loads(out)
    assert status == 0 and len(samples) == 4 and all({"text", "tokens"} <= set(s) for s in samples)
    status, again, _ = run_cli("generate", path, "-n", "4", "--seed", "1", "--min-length", "3", "--json")
    assert again == out
    nbest = tmp_path / "nbest.txt"
    nbest.write_text("mat the on sat cat the .\nthe cat sat on the mat .\n\nthe dog saw the cat .\ncat the saw\n")
    status, out, _ = run_cli("rerank", path, nbest)
    assert status == 0 and out.splitlines() == ["the cat sat on the mat .", "the dog saw the cat ."]


def test_cli_errors(trained, run_cli, tmp_path):
    status, _, err = run_cli("score", tmp_path / "no-model", tmp_path / "x.txt")
    assert status == 2 and "not a model directory" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    status, _, err = run_cli("score", trained[1], empty)
    assert status == 2 and "no sentences" in err


def test_imported_tutorial_model_generates_and_scores(trained, tmp_path):
    corpus = trained[0]
    rng = np.random.default_rng(0)
    C, H = len(corpus.vocab), 6
    np.savez(tmp_path / "tutorial.npz", U=rng.uniform(-0.3, 0.3, (H, C)).astype(np.float32),
             V=rng.uniform(-0.3, 0.3, (C, H)).astype(np.float32), W=rng.uniform(-0.3, 0.3, (H, H)).astype(np.float32))
    import_tutorial(tmp_path / "tutorial.npz", tmp_path / "imported", vocab_from=corpus.path)
    model = rnnkit.load(tmp_path / "imported")
    assert len(model.generate(n=3, seed=0, min_length=1)) == 3
    score = model.score(["the cat sat ."])[0]
    assert score.tokens == 5 and score.logprob < 0


def test_quickstart_scrambles_held_out_sentences(trained):
    from rnnkit.cli.quickstart import held_out_pairs

    corpus, _ = trained
    english, scrambled = held_out_pairs(corpus, 5)
    valid = {" ".join(corpus.decode(s)) for s in corpus.sentences("valid")}
    assert len(english) == len(scrambled) == 5 and set(english) <= valid
    assert all(sorted(a.split()) == sorted(b.split()) for a, b in zip(english, scrambled))
    assert held_out_pairs(corpus, 5) == (english, scrambled)  # the same pairs every run


def test_sampling_runs_the_model_on_live_rows_only():
    """A row that draws the stop token leaves the batch: the model is not run for it again, and
    the other rows keep their own states."""
    from rnnkit.lm.generate import sample

    class Countdown:  # row r says "1" r times, then "0" (stop); its state is its remaining count
        def __init__(self):
            self.batches = []

        def initial_state(self, n):
            return np.arange(n, dtype=float).reshape(1, n, 1)

        def step(self, tokens, h):
            self.batches.append(len(tokens))
            left = h[0, :, 0]
            probs = np.zeros((len(tokens), 2))
            probs[np.arange(len(tokens)), (left > 0).astype(int)] = 1.0
            return probs, h - 1

    runner = Countdown()
    out = sample(runner, np.zeros((4, 1), dtype=np.int64), steps=10, stop=0, rng=np.random.default_rng(0))
    assert out == [[], [1], [1, 1], [1, 1, 1]]
    assert runner.batches == [4, 3, 2, 1]
