"""The neural cache: its arithmetic against a plain reference, λ = 0 exactly the model, a text
where it must win, both engines agreeing, fitting, and its use in every verb."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnkit
from rnnkit import RnnkitError
from rnnkit.lm import train
from rnnkit.lm.cache import Cache, CachedRunner, CacheStream, mix
from rnnkit.lm.evaluate import observations

LINES = ["the cat sat on the mat .", "the dog sat on the log .", "a cat saw a dog .", "the dog saw the cat .",
         "a bird sat on a cat .", "the king saw the bird ."]
# A text about a word the model has seen once: a cache that remembers it predicts it again.
ZEBRA = ["the zebra sat on the mat .", "a zebra saw the zebra .", "the cat saw a zebra .", "the zebra sat ."]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(0)
    train_text = "\n".join(rng.choice(LINES, 600)) + "\nthe zebra sat .\n"
    # Validation: ordinary sentences, each followed a little later by its repetition, so a cache pays.
    valid = [s for s in rng.choice(LINES + ZEBRA, 40) for _ in range(2)]
    (tmp / "train.txt").write_text(train_text, encoding="utf-8")
    (tmp / "valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
    corpus = rnnkit.prepare(tmp / "train.txt", tmp / "tiny", valid_file=tmp / "valid.txt", lines=True, vocab_size=0,
                            progress=False)
    train(corpus, tmp / "model", recipe="seed", engine="numpy", cell="lstm", hidden=16, embedding=8,
          batch_size=8, optimizer="adam", lr=0.02, epochs=3, log=lambda _: None)
    return corpus, tmp / "model"


def reference_cache_probs(states, targets, window, theta):
    """p_cache(target) position by position, by the definition, in float64."""
    out, has = np.zeros(len(states)), np.zeros(len(states), dtype=bool)
    for t in range(len(states)):
        keys = range(max(0, t - window), t)
        if not keys:
            continue
        scores = np.array([theta * states[t] @ states[i] for i in keys], dtype=np.float64)
        weights = np.exp(scores - scores.max())
        out[t] = sum(w for w, i in zip(weights, keys) if targets[i] == targets[t]) / weights.sum()
        has[t] = True
    return out, has


@pytest.mark.parametrize("window", [1, 7, 300])
def test_cache_probabilities_follow_the_definition_across_calls_and_chunks(window):
    rng = np.random.default_rng(window)
    states = rng.normal(size=(600, 5)).astype(np.float32)
    targets = rng.integers(0, 6, size=600)
    expected, expected_has = reference_cache_probs(states.astype(np.float64), targets, window, 0.7)
    stream, got, has = CacheStream(window), [], []
    for a, b in [(0, 1), (1, 40), (40, 333), (333, 600)]:  # a text read in pieces of any size
        probs, present = stream.target_probs(states[a:b], targets[a:b], [0.0, 0.7])
        assert np.allclose(probs[0][present], [np.mean(targets[max(0, t - window):t] == targets[t])
                                               for t in range(a, b) if t > 0])  # θ = 0: the window's word counts
        got.append(probs[1])
        has.append(present)
    np.testing.assert_allclose(np.concatenate(got), expected, rtol=1e-4, atol=1e-7)
    assert (np.concatenate(has) == expected_has).all()


def test_a_cache_distribution_sums_to_one_and_puts_mass_on_remembered_words():
    stream = CacheStream(10)
    stream.add(np.eye(3, dtype=np.float32), np.array([4, 4, 2]))
    p = stream.distribution(np.array([0.0, 0.0, 5.0]), theta=2.0, vocabulary=6)
    assert abs(p.sum() - 1) < 1e-12 and set(np.flatnonzero(p)) == {2, 4} and p[2] > p[4]
    assert not CacheStream(10).distribution(np.ones(3), 1.0, 6).any()


def test_mix_with_lambda_zero_is_the_model_bit_for_bit():
    log_probs = np.log(np.random.default_rng(0).random(50))
    assert (mix(log_probs, np.zeros(50), np.ones(50, dtype=bool), 0.0) == log_probs).all()
    mixed = mix(log_probs, np.ones(50), np.ones(50, dtype=bool), 0.5)
    np.testing.assert_allclose(mixed, np.log(0.5 * np.exp(log_probs) + 0.5))


def test_lambda_zero_scores_evaluates_and_generates_as_the_model_itself(trained):
    corpus, path = trained
    plain, cached = rnnkit.load(path, engine="numpy"), rnnkit.load(path, engine="numpy")
    cached.cache = Cache(50, 0.0, 1.0)
    assert [s.logprob for s in cached.score(ZEBRA)] == [s.logprob for s in plain.score(ZEBRA)]
    result = cached.evaluate(corpus)
    assert result["loss"] == result["without_cache"]["loss"]
    assert abs(result["loss"] - plain.evaluate(corpus)["loss"]) < 1e-6
    assert cached.generate(n=3, seed=4) == plain.generate(n=3, seed=4)


def test_the_cache_wins_on_a_text_that_repeats_a_rare_word(trained):
    _, path = trained
    plain, cached = rnnkit.load(path, engine="numpy"), rnnkit.load(path, engine="numpy")
    cached.cache = Cache(100, 0.3, 1.0)
    zebra = plain.vocab.index["zebra"]

    def zebra_logprob(model):  # log P of every "zebra" after the first sentence
        ids = [model.vocab.encode(model.tokenize(s)) for s in ZEBRA]
        scores = model.score_ids(ids)
        return sum(lp[:-1][sentence == zebra].sum() for sentence, lp in zip(ids[1:], scores[1:]))

    assert zebra_logprob(cached) > zebra_logprob(plain) + 3.0  # e^3: twenty times likelier over the four
    assert rnnkit.load(path).perplexity(ZEBRA) > cached.perplexity(ZEBRA)


def test_both_engines_give_the_same_states_and_cached_scores(trained):
    corpus, path = trained
    by = {engine: rnnkit.load(path, engine=engine) for engine in ("numpy", "torch")}
    for model in by.values():
        model.cache = Cache(100, 0.3, 1.0)
    first = {engine: next(observations(model.engine, corpus, "valid", "sentence")) for engine, model in by.items()}
    for a, b in zip(first["numpy"][1:], first["torch"][1:]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    scores = {engine: [s.logprob for s in model.score(ZEBRA + LINES)] for engine, model in by.items()}
    np.testing.assert_allclose(scores["numpy"], scores["torch"], rtol=1e-4)
    losses = {engine: model.evaluate(corpus)["loss"] for engine, model in by.items()}
    assert abs(losses["numpy"] - losses["torch"]) < 1e-4


def test_documents_start_their_own_cache(trained):
    _, path = trained
    model = rnnkit.load(path, engine="numpy")
    model.cache = Cache(100, 0.3, 1.0)
    together = model.score(ZEBRA + ZEBRA, documents=[0] * 4 + [1] * 4)
    alone = model.score(ZEBRA)
    assert [s.logprob for s in together[4:]] == pytest.approx([s.logprob for s in alone], rel=1e-9)
    one_text = model.score(ZEBRA + ZEBRA)
    assert sum(s.logprob for s in one_text[4:]) > sum(s.logprob for s in alone)  # it remembered the first four


def test_fit_finds_a_cache_that_lowers_validation_loss_and_saves_it(trained, tmp_path):
    import shutil

    corpus, path = trained
    model_dir = tmp_path / "model"
    shutil.copytree(path, model_dir)
    model = rnnkit.load(model_dir, engine="numpy")
    fitted = model.fit_cache(corpus, window=200)
    assert fitted.cache.lam > 0 and fitted.cached_loss < fitted.loss - 0.05
    assert model.evaluate(corpus)["loss"] == pytest.approx(fitted.cached_loss, rel=1e-6)
    saved = json.loads((model_dir / "config.json").read_text())["cache"]
    assert saved["window"] == 200 and saved["lam"] == fitted.cache.lam and saved["theta"] == fitted.cache.theta
    assert "## Neural cache" in (model_dir / "README.md").read_text()
    assert rnnkit.load(model_dir).cache == fitted.cache  # used by default from now on
    model.use_cache(50)
    assert model.cache == fitted.cache.resized(50)
    model.use_cache(0)
    assert model.cache is None


def test_generation_with_the_cache_is_seeded_and_mixes_distributions(trained):
    _, path = trained
    model = rnnkit.load(path, engine="numpy")
    model.cache = Cache(100, 0.5, 1.0)
    assert model.generate(n=4, seed=2) == model.generate(n=4, seed=2)
    runner = CachedRunner(model.engine, model.cache, len(model.vocab))
    state = runner.initial_state(2)
    probs, state = runner.step(np.array([model.start_id] * 2), state)
    np.testing.assert_allclose(probs, model.engine.step(np.array([model.start_id] * 2),
                                                        model.engine.initial_state(2))[0], rtol=1e-6)  # empty cache
    the = model.vocab.index["the"]
    probs, state = runner.step(np.array([the, the]), state)
    assert np.allclose(probs.sum(axis=1), 1) and (probs[:, the] > 0.5 * 1.0 - 1e-9).all()  # the cache holds "the"
    assert state[..., np.array([1]), :].streams == [state.streams[1]]


def test_cli_fit_cache_then_evaluate_score_generate(trained, run_cli, tmp_path):
    import shutil

    corpus, path = trained
    model_dir = tmp_path / "model"
    shutil.copytree(path, model_dir)
    status, out, err = run_cli("evaluate", model_dir, corpus.path, "--cache", "100")
    assert status == 2 and "has no fitted cache; fit one first: rnnkit fit-cache" in err
    status, out, _ = run_cli("fit-cache", model_dir, corpus.path, "--window", "300", "--engine", "numpy")
    assert status == 0 and "Fitted the neural cache" in out and "->" in out
    status, out, _ = run_cli("evaluate", model_dir, corpus.path, "--engine", "numpy", "--json")
    result = json.loads(out)
    assert status == 0 and result["cache"]["window"] == 300 and result["loss"] < result["without_cache"]["loss"]
    status, out, _ = run_cli("evaluate", model_dir, corpus.path, "--engine", "numpy", "--cache", "0", "--json")
    assert "cache" not in json.loads(out) and json.loads(out)["loss"] == pytest.approx(
        result["without_cache"]["loss"], rel=1e-6)
    text = tmp_path / "zebra.txt"
    text.write_text("\n".join(ZEBRA) + "\n", encoding="utf-8")
    lines = {}
    for cache in ("0", "300"):
        status, out, _ = run_cli("score", model_dir, text, "--cache", cache, "--json")
        assert status == 0
        lines[cache] = json.loads(out.splitlines()[-1])["logprob"]
    assert lines["300"] > lines["0"]
    status, out, _ = run_cli("generate", model_dir, "-n", "2", "--seed", "1", "--json")
    assert status == 0 and len(json.loads(out)) == 2
    status, _, err = run_cli("score", model_dir, text, "--cache", "-3")
    assert status == 2 and "--cache must be 0 (off) or a window" in err


def test_a_damaged_cache_section_is_one_clear_error(trained, tmp_path):
    import shutil

    _, path = trained
    model_dir = tmp_path / "model"
    shutil.copytree(path, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    for damaged in ({"window": "many", "lam": 0.1, "theta": 1}, {"window": 10, "lam": 1.5, "theta": 1}, {"lam": 0.1},
                    {"window": 10, "lam": 0.1, "theta": float("nan")}, "cache"):
        (model_dir / "config.json").write_text(json.dumps({**config, "cache": damaged}))
        with pytest.raises(RnnkitError, match="fitted cache is damaged"):
            rnnkit.load(model_dir)


# ------------------------------------------------------------------------------ dynamic evaluation

def test_dynamic_evaluation_adapts_then_restores_the_weights_on_both_engines(trained):
    from rnnkit.data.batching import evaluation_batches
    from rnnkit.lm.dynamic import Dynamic, adapted_observations, mean_loss

    corpus, path = trained
    losses = {}
    for engine in ("numpy", "torch"):
        model = rnnkit.load(path, engine=engine)
        before = {k: v.copy() for k, v in model.engine.params().items()}
        static, count = mean_loss(adapted_observations(
            model.engine, evaluation_batches(corpus, "valid", 1, in_order=True), Dynamic(0.0, 0.0), carry=False))
        adapted, _ = mean_loss(adapted_observations(
            model.engine, evaluation_batches(corpus, "valid", 1, in_order=True), Dynamic(0.3, 0.0), carry=False))
        after = model.engine.params()
        assert all((after[k] == before[k]).all() for k in before)  # the trained weights came back
        assert static == pytest.approx(model.evaluate(corpus)["loss"], rel=1e-6)
        assert count == model.evaluate(corpus)["tokens"] and adapted < static - 0.02  # repeated sentences are learnt
        losses[engine] = (static, adapted)
    np.testing.assert_allclose(losses["numpy"], losses["torch"], rtol=2e-4)


def test_dynamic_evaluation_never_scores_a_token_it_has_learnt_from(trained):
    """A segment's log-probabilities are those of the model before it saw that segment."""
    from rnnkit.lm.dynamic import Dynamic, adapted_observations, stream_segments

    _, path = trained
    model = rnnkit.load(path, engine="numpy")
    tokens = np.array(model.vocab.encode("the zebra sat on the zebra . the zebra sat .".split()))
    read = list(adapted_observations(model.engine, stream_segments(tokens, 4), Dynamic(1.0, 0.0, segment=4),
                                     carry=True))
    first = model.engine.observe(tokens[None, :4], tokens[None, 1:5])[0][0]
    np.testing.assert_allclose(read[0][1], first)  # nothing learnt yet
    replay, h = [], model.engine.initial_state(1)
    for a in range(0, len(tokens) - 1, 4):  # by hand: predict, then adapt
        b = min(a + 4, len(tokens) - 1)
        lp, _, h = model.engine.adapt(tokens[None, a:b], tokens[None, a + 1:b + 1], np.ones((1, b - a), dtype=bool),
                                      h, 1.0, 0.0)
        replay.append(lp[0])
    model.engine.restore()
    np.testing.assert_allclose(np.concatenate([r[1] for r in read]), np.concatenate(replay))


def test_cli_fit_dynamic_then_evaluate_and_score(trained, run_cli, tmp_path):
    import shutil

    corpus, path = trained
    model_dir = tmp_path / "model"
    shutil.copytree(path, model_dir)
    status, _, err = run_cli("evaluate", model_dir, corpus.path, "--dynamic")
    assert status == 2 and "no fitted dynamic evaluation; fit it first: rnnkit fit-dynamic" in err
    status, out, _ = run_cli("fit-dynamic", model_dir, corpus.path, "--engine", "numpy", "--json")
    fitted = json.loads(out)
    assert status == 0 and fitted["lr"] > 0 and fitted["dynamic_loss"] < fitted["loss"]
    assert "## Dynamic evaluation" in (model_dir / "README.md").read_text()
    status, out, _ = run_cli("evaluate", model_dir, corpus.path, "--engine", "numpy", "--dynamic", "--json")
    result = json.loads(out)
    assert status == 0 and result["dynamic"]["loss"] < result["loss"] and result["dynamic"]["settings"]["lr"] == \
        fitted["lr"]
    status, out, _ = run_cli("evaluate", model_dir, corpus.path, "--engine", "numpy", "--dynamic")
    assert status == 0 and "dynamic evaluation (one stream, lr" in out
    text = tmp_path / "zebra.txt"
    text.write_text("\n".join(ZEBRA * 3) + "\n", encoding="utf-8")
    totals = {}
    for flags in ((), ("--dynamic",)):
        status, out, _ = run_cli("score", model_dir, text, "--engine", "numpy", "--json", *flags)
        lines = [json.loads(line) for line in out.splitlines()]
        assert status == 0 and len(lines) == 13 and lines[-1]["tokens"] == sum(s["tokens"] for s in lines[:-1])
        totals[flags] = lines[-1]["logprob"]
    assert totals[("--dynamic",)] > totals[()]


def test_a_stream_model_scores_sentences_dynamically_as_one_stream(tmp_path):
    from rnnkit.lm.dynamic import Dynamic

    rng = np.random.default_rng(1)
    (tmp_path / "text.txt").write_text("\n".join(rng.choice(LINES, 300)) + "\n", encoding="utf-8")
    corpus = rnnkit.prepare(tmp_path / "text.txt", tmp_path / "corpus", lines=True, vocab_size=0, progress=False)
    train(corpus, tmp_path / "model", engine="numpy", hidden=8, max_steps=20, log=lambda _: None, progress=False)
    model = rnnkit.load(tmp_path / "model", engine="numpy")
    assert model.start_id == model.end_id  # trained on a stream
    model.dynamic = Dynamic(0.0, 0.0, segment=5)  # read as dynamic evaluation reads, without adapting
    scores = model.score(LINES[:3], dynamic=True)
    ids = [model.vocab.encode(model.tokenize(s)) for s in LINES[:3]]
    stream = np.concatenate([[model.end_id], *[np.append(s, model.end_id) for s in ids]])
    expected = model.engine.observe(stream[None, :-1], stream[None, 1:])[0][0]
    assert [s.tokens for s in scores] == [len(s) + 1 for s in ids]
    np.testing.assert_allclose(np.concatenate([[t for _, t in s.token_probs] for s in
                                               model.score(LINES[:3], dynamic=True, per_token=True)]),
                               np.exp(expected), rtol=1e-5)
    model.dynamic = Dynamic(0.5, 0.0, segment=5)
    assert model.score(LINES[:3] * 4, dynamic=True)[-1].logprob != scores[-1].logprob


def test_the_server_uses_the_fitted_cache_within_each_request_only(trained, tmp_path):
    import asyncio
    import shutil

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rnnkit.serve import create_app, open_served

    corpus, path = trained
    model_dir = tmp_path / "model"
    shutil.copytree(path, model_dir)
    rnnkit.load(model_dir, engine="numpy").fit_cache(corpus, window=300)
    served = {"lm": open_served(f"lm={model_dir}", engine="numpy")}
    expected = [s.logprob for s in rnnkit.load(model_dir, engine="numpy").score(ZEBRA)]
    with TestClient(create_app(served, batch_window_ms=50)) as client:
        assert client.get("/v1/models").json()["models"][0]["cache"]["window"] == 300

        async def together():  # two requests in one batch of the model: neither remembers the other's text
            import httpx

            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await asyncio.gather(*(c.post("/v1/models/lm/score", json={"sentences": ZEBRA})
                                              for _ in range(2)))

        for response in client.portal.call(together):
            assert [r["logprob"] for r in response.json()["results"]] == pytest.approx(expected, rel=1e-9)
