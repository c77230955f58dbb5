"""The numpy reference engine: the seed's numbers (checked against the seed's own code), batched."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.compat.seed_baseline import SeedRNNNumpy
from rnnkit.data.batching import pad_batch
from rnnkit.models.numpy import gradient_check, initialize
from rnnkit.tutorial import RNNNumpy, generate_sentence, train_with_sgd


def _pair(vocab=40, hidden=7, truncate=4, seed=10):
    np.random.seed(seed)
    reference = SeedRNNNumpy(vocab, hidden, bptt_truncate=truncate)
    np.random.seed(seed)
    ours = RNNNumpy(vocab, hidden, bptt_truncate=truncate)
    return reference, ours


def test_initialisation_is_the_seeds():
    reference, ours = _pair(vocab=300, hidden=20)
    for name in ("U", "V", "W"):
        assert np.array_equal(getattr(reference, name), getattr(ours, name))
    assert ours.U.shape == (20, 300) and ours.V.shape == (300, 20) and ours.W.shape == (20, 20)


@pytest.mark.parametrize("truncate", [1, 4, 1000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reproduces_the_seed_code(truncate, seed):
    reference, ours = _pair(truncate=truncate, seed=seed)
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 40, 15), rng.integers(0, 40, 15)
    o_ref, s_ref = reference.forward_propagation(x)
    o, s = ours.forward_propagation(x)
    assert s.shape == (16, 7) and not s[-1].any()
    np.testing.assert_allclose(o, o_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(s, s_ref, rtol=0, atol=1e-10)
    assert abs(ours.calculate_total_loss([x], [y]) - reference.calculate_total_loss([x], [y])) < 1e-10
    for got, expected in zip(ours.bptt(x, y), reference.bptt(x, y)):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    assert np.array_equal(ours.predict(x), np.argmax(o_ref, axis=1))
    reference.sgd_step(x, y, 0.1)
    ours.sgd_step(x, y, 0.1)
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(getattr(ours, name), getattr(reference, name), rtol=0, atol=1e-10)


def test_loss_at_initialisation_is_log_c():
    np.random.seed(10)
    model = RNNNumpy(2000, 50)
    rng = np.random.default_rng(0)
    X = [rng.integers(0, 2000, rng.integers(5, 30)) for _ in range(50)]
    Y = [rng.integers(0, 2000, len(x)) for x in X]
    assert abs(model.calculate_loss(X, Y) / np.log(2000) - 1) < 0.01


def test_tutorial_gradient_check_passes(capsys):
    np.random.seed(10)
    model = RNNNumpy(100, 10, bptt_truncate=1000)
    assert model.gradient_check([0, 1, 2, 3], [1, 2, 3, 4]) is True
    out = capsys.readouterr().out
    for name in "UVW":
        assert f"Gradient check for parameter {name} passed." in out


def test_gradient_check_catches_a_wrong_gradient():
    np.random.seed(10)
    model = RNNNumpy(30, 5, bptt_truncate=1)  # truncated BPTT is not the loss's true gradient
    assert model.gradient_check(list(range(8)), list(range(1, 9))) is False


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batched_equals_per_sentence(dtype):
    model = initialize("rnn", 50, 8, bptt_truncate=3, rng=np.random.RandomState(0), dtype=dtype)
    rng = np.random.default_rng(1)
    xs = [rng.integers(0, 50, n) for n in (3, 9, 1, 6)]
    ys = [rng.integers(0, 50, len(x)) for x in xs]
    x, mask = pad_batch(xs)
    y, _ = pad_batch(ys)
    loss, grads = model.loss_and_grads(x, y, mask)
    assert grads["U"].dtype == dtype
    separate = [model.loss_and_grads(*pad_batch([a])[:1], pad_batch([b])[0], pad_batch([a])[1]) for a, b in zip(xs, ys)]
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    assert abs(loss - sum(l for l, _ in separate)) <= tolerance * abs(loss)
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(grads[name], sum(g[name] for _, g in separate), rtol=tolerance, atol=tolerance)


def test_engine_gradient_check_on_a_padded_batch():
    model = initialize("rnn", 20, 6, bptt_truncate=1000, rng=np.random.RandomState(3))
    x, mask = pad_batch([[0, 4, 5, 9, 2], [3, 1], [7, 7, 8]])
    y, _ = pad_batch([[4, 5, 9, 2, 1], [1, 1], [7, 8, 1]])
    errors = gradient_check(model, x, y, mask)
    assert set(errors) == {"U", "V", "W"} and max(errors.values()) < 1e-3  # a wrong gradient gives ~1


def test_train_with_sgd_lowers_the_loss_and_halves_the_rate(capsys):
    np.random.seed(10)
    model = RNNNumpy(12, 10)
    # A tiny language: 0 → 1 2 3 … → 11.
    X = [[0, 1, 2, 3, 4], [0, 5, 6, 7], [0, 8, 9, 10]] * 5
    Y = [[1, 2, 3, 4, 11], [5, 6, 7, 11], [8, 9, 10, 11]] * 5
    losses = train_with_sgd(model, X, Y, learning_rate=0.05, nepoch=20, evaluate_loss_after=2)
    assert len(losses) == 10 and losses[-1][1] < 0.5 * losses[0][1]
    assert losses[1][0] == 30  # examples seen after two epochs
    out = capsys.readouterr().out
    assert "Loss after num_examples_seen=0 epoch=0" in out
    # A rate far too high makes the loss rise: the seed halves it.
    np.random.seed(10)
    model = RNNNumpy(12, 10)
    train_with_sgd(model, X, Y, learning_rate=50.0, nepoch=6, evaluate_loss_after=1)
    assert "Setting learning rate to 25.000000" in capsys.readouterr().out


def test_generate_sentence_follows_the_seed_rules():
    words = ["SENTENCE_START", "SENTENCE_END", "a", "b", "c", "UNKNOWN_TOKEN"]
    index = {w: i for i, w in enumerate(words)}
    np.random.seed(4)
    model = RNNNumpy(len(words), 8)
    model.V[index["UNKNOWN_TOKEN"]] += 3.0  # make the unknown token the likeliest word
    np.random.seed(0)
    sentences = [generate_sentence(model, words, index, min_length=3) for _ in range(20)]
    assert all(len(s) >= 3 for s in sentences)
    assert all(w in ("a", "b", "c", "SENTENCE_START") for s in sentences for w in s)
    np.random.seed(0)
    assert [generate_sentence(model, words, index, min_length=3) for _ in range(20)] == sentences


@pytest.mark.parametrize("layers,embedding", [(2, None), (1, 5), (3, 4)])
def test_gradient_check_deep_and_embedded(layers, embedding):
    model = initialize("rnn", 20, 6, bptt_truncate=1000, layers=layers, embedding=embedding,
                                rng=np.random.RandomState(3))
    x, mask = pad_batch([[0, 4, 5, 9, 2], [3, 1], [7, 7, 8]])
    y, _ = pad_batch([[4, 5, 9, 2, 1], [1, 1], [7, 8, 1]])
    errors = gradient_check(model, x, y, mask)
    expected = {"U", "V", "W"} | ({"E"} if embedding else set()) | {f"{n}{k}" for k in range(2, layers + 1) for n in "UW"}
    assert set(errors) == expected and max(errors.values()) < 1e-3


def test_dropout_gradients_with_fixed_masks():
    model = initialize("rnn", 20, 6, bptt_truncate=1000, layers=2, embedding=5, dropout=0.4,
                                rng=np.random.RandomState(1))
    x, mask = pad_batch([[0, 4, 5, 9, 2], [3, 1]])
    y, _ = pad_batch([[4, 5, 9, 2, 1], [1, 1]])
    loss = lambda: float(-model.forward(x, y, rng=np.random.default_rng(7)).target_log_probs[mask].sum())  # noqa: E731
    _, grads = model.loss_and_grads(x, y, mask, rng=np.random.default_rng(7))
    assert abs(loss() - model.loss(x, y, mask)) > 1e-6  # dropout changes the loss
    for name in ("E", "U", "W", "U2", "W2", "V"):
        p = model.params[name]
        ix = tuple(int(i) for i in np.argwhere(grads[name] != 0)[0])
        original = p[ix]
        p[ix] = original + 1e-6
        plus = loss()
        p[ix] = original - 1e-6
        minus = loss()
        p[ix] = original
        assert abs((plus - minus) / 2e-6 - grads[name][ix]) < 1e-5 * max(1.0, abs(grads[name][ix]))
