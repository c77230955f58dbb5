"""The seed tutorial's own interface (Part 2), running on rnnkit's engine.

A reader of the tutorial can run its code unchanged::

    import numpy as np
    from rnnkit.tutorial import RNNNumpy, train_with_sgd, generate_sentence   # or rnnkit.compat.tutorial

    np.random.seed(10)
    model = RNNNumpy(vocabulary_size)               # the seed's model, weight for weight
    o, s = model.forward_propagation(X_train[10])
    model.gradient_check([0, 1, 2, 3], [1, 2, 3, 4])
    losses = train_with_sgd(model, X_train[:100], y_train[:100], nepoch=10, evaluate_loss_after=1)

The numbers are the seed code's (float64); the loops are not: ``rnnkit.models.numpy`` computes
each sentence's outputs, loss and truncated-BPTT gradients with batched matrix products.
(``rnnkit.tutorial`` is this module under its 0.2.0 name.)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from rnnkit.data.batching import pad_batch
from rnnkit.lm.generate import sample_sentence
from rnnkit.models.network import Network
from rnnkit.models.numpy import build
from rnnkit.models.numpy.gradcheck import relative_error
from rnnkit.models.threads import on_one_blas_thread
from rnnkit.text.vocab import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN

__all__ = ["RNNNumpy", "train_with_sgd", "generate_sentence"]


class RNNNumpy:
    """The seed's ``RNNNumpy``: attributes ``U`` (H×C), ``V`` (C×H), ``W`` (H×H), same methods."""

    def __init__(self, word_dim: int, hidden_dim: int = 100, bptt_truncate: int = 4) -> None:
        self.word_dim = word_dim
        self.hidden_dim = hidden_dim
        self.bptt_truncate = bptt_truncate
        # drawn from numpy's global generator, U, V, W in the seed's order: np.random.seed gives its weights
        self.engine = build(Network("rnn", word_dim, hidden_dim, bptt_truncate=bptt_truncate, dtype="float64"))

    # The seed reads and assigns model.U etc.; they are the engine's arrays.
    U = property(lambda self: self.engine.params["U"], lambda self, v: self.engine.params.__setitem__("U", v))
    V = property(lambda self: self.engine.params["V"], lambda self, v: self.engine.params.__setitem__("V", v))
    W = property(lambda self: self.engine.params["W"], lambda self, v: self.engine.params.__setitem__("W", v))

    def _sync(self) -> None:
        self.engine.bptt_truncate = self.bptt_truncate

    @on_one_blas_thread
    def forward_propagation(self, x: Sequence[int]) -> list[np.ndarray]:
        """[o, s]: o (T×C) the output probabilities, s (T+1×H) the states, the last row the zero s_{-1}."""
        fwd = self.engine.forward(np.asarray([x], dtype=np.int64))
        s = np.zeros((len(x) + 1, self.hidden_dim), dtype=self.engine.dtype)
        s[:-1] = fwd.states[0]
        return [fwd.probs[0], s]

    def predict(self, x: Sequence[int]) -> np.ndarray:
        o, _ = self.forward_propagation(x)
        return np.argmax(o, axis=1)

    @on_one_blas_thread
    def calculate_total_loss(self, x: Sequence[Sequence[int]], y: Sequence[Sequence[int]]) -> float:
        """Summed cross-entropy of sentences ``y`` given inputs ``x``, in batches of sentences."""
        total = 0.0
        for start in range(0, len(y), 64):
            xs, _ = pad_batch([np.asarray(s) for s in x[start:start + 64]])
            ys, mask = pad_batch([np.asarray(s) for s in y[start:start + 64]])
            total += self.engine.loss(xs, ys, mask)
        return total

    def calculate_loss(self, x: Sequence[Sequence[int]], y: Sequence[Sequence[int]]) -> float:
        """Mean cross-entropy per word."""
        return self.calculate_total_loss(x, y) / sum(len(y_i) for y_i in y)

    @on_one_blas_thread
    def bptt(self, x: Sequence[int], y: Sequence[int]) -> list[np.ndarray]:
        """[dLdU, dLdV, dLdW] with the seed's truncation at ``bptt_truncate`` steps."""
        self._sync()
        xs, _ = pad_batch([np.asarray(x)])
        ys, mask = pad_batch([np.asarray(y)])
        _, grads = self.engine.loss_and_grads(xs, ys, mask)
        return [grads["U"], grads["V"], grads["W"]]

    @on_one_blas_thread
    def sgd_step(self, x: Sequence[int], y: Sequence[int], learning_rate: float) -> None:
        """U -= lr·dLdU, V -= lr·dLdV, W -= lr·dLdW (U only where dLdU is not zero: the same numbers)."""
        self._sync()
        xs, _ = pad_batch([np.asarray(x)])
        ys, mask = pad_batch([np.asarray(y)])
        self.engine.sgd_update(xs, ys, mask, learning_rate)

    def gradient_check(self, x: Sequence[int], y: Sequence[int], h: float = 0.001,
                       error_threshold: float = 0.01) -> bool:
        """The seed's check, with its messages; True when every parameter passes."""
        bptt_gradients = self.bptt(x, y)
        for pidx, pname in enumerate(["U", "V", "W"]):
            parameter = getattr(self, pname)
            print(f"Performing gradient check for parameter {pname} with size {parameter.size}.")
            for ix in np.ndindex(*parameter.shape):
                original_value = parameter[ix]
                parameter[ix] = original_value + h
                gradplus = self.calculate_total_loss([x], [y])
                parameter[ix] = original_value - h
                gradminus = self.calculate_total_loss([x], [y])
                estimated_gradient = (gradplus - gradminus) / (2 * h)
                parameter[ix] = original_value
                backprop_gradient = bptt_gradients[pidx][ix]
                error = relative_error(float(backprop_gradient), estimated_gradient)
                if error > error_threshold:
                    print(f"Gradient Check ERROR: parameter={pname} ix={ix}")
                    print(f"+h Loss: {gradplus:f}\n-h Loss: {gradminus:f}")
                    print(f"Estimated_gradient: {estimated_gradient:f}\nBackpropagation gradient: {backprop_gradient:f}")
                    print(f"Relative Error: {error:f}")
                    return False
            print(f"Gradient check for parameter {pname} passed.")
        return True


def train_with_sgd(model: RNNNumpy, X_train, y_train, learning_rate: float = 0.005, nepoch: int = 100,
                   evaluate_loss_after: int = 5) -> list[tuple[int, float]]:
    """The seed's outer loop: one SGD step per sentence; every ``evaluate_loss_after`` epochs the
    training loss is logged, and the learning rate halves when it went up. Returns the losses."""
    losses: list[tuple[int, float]] = []
    num_examples_seen = 0
    for epoch in range(nepoch):
        if epoch % evaluate_loss_after == 0:
            loss = model.calculate_loss(X_train, y_train)
            losses.append((num_examples_seen, loss))
            time = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
            print(f"{time}: Loss after num_examples_seen={num_examples_seen} epoch={epoch}: {loss:f}")
            if len(losses) > 1 and losses[-1][1] > losses[-2][1]:
                learning_rate = learning_rate * 0.5
                print(f"Setting learning rate to {learning_rate:f}")
            sys.stdout.flush()
        for i in range(len(y_train)):
            model.sgd_step(X_train[i], y_train[i], learning_rate)
            num_examples_seen += 1
    return losses


def generate_sentence(model: RNNNumpy, index_to_word: Sequence[str], word_to_index: dict[str, int],
                      min_length: int = 0, max_length: int = 1000) -> list[str]:
    """The seed's sampler: from SENTENCE_START, draw each word with ``np.random.multinomial`` until
    SENTENCE_END, never UNKNOWN_TOKEN; sentences shorter than ``min_length`` words are drawn again."""
    while True:
        ids = sample_sentence(model.engine, word_to_index[SENTENCE_START], word_to_index[SENTENCE_END],
                              banned=[word_to_index[UNKNOWN_TOKEN]], max_length=max_length)
        if len(ids) >= min_length:
            return [index_to_word[i] for i in ids]
