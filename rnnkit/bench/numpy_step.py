"""`rnnkit bench numpy-step`: one SGD step of the seed's model, seed code against rnnkit's engine.

The seed (Part 2) times ``model.sgd_step(X_train[10], y_train[10], 0.005)`` with C = 8000,
H = 100, bptt_truncate = 4 on a 45-word sentence: 350 ms on its 2015 laptop. Here both run in
one process, float64, on the same weights and sentence: the seed's literal loop code
(``rnnkit.compat.seed_baseline``, the baseline) at its best, on one BLAS thread, and rnnkit's
engine as a user runs it. Their gradients must agree to 1e-10 before anything is timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from rnnkit.compat.seed_baseline import SeedRNNNumpy
from rnnkit.compat.tutorial import RNNNumpy
from rnnkit.models.threads import one_blas_thread


def _best_ms(step: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return 1e3 * min(times)


def run(vocab_size: int = 8000, hidden: int = 100, length: int = 45, bptt_truncate: int = 4,
        repeats: int = 5) -> dict:
    np.random.seed(10)
    seed = SeedRNNNumpy(vocab_size, hidden, bptt_truncate)
    np.random.seed(10)
    ours = RNNNumpy(vocab_size, hidden, bptt_truncate)
    sentence = np.random.RandomState(10).randint(0, vocab_size, length + 1)
    x, y = sentence[:-1], sentence[1:]
    with one_blas_thread():  # the baseline at its best
        expected = seed.bptt(x, y)
    got = ours.bptt(x, y)
    max_difference = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
    if max_difference > 1e-10:
        raise AssertionError(f"rnnkit's gradients differ from the seed's by {max_difference:.3g}")
    with one_blas_thread():  # best of several: on a shared machine one step can take twice another
        seed_ms = _best_ms(lambda: seed.sgd_step(x, y, 0.005), 2 * repeats)
    rnnkit_ms = _best_ms(lambda: ours.sgd_step(x, y, 0.005), repeats * 4)
    return {"vocab_size": vocab_size, "hidden": hidden, "length": length, "bptt_truncate": bptt_truncate,
            "dtype": "float64", "max_gradient_difference": max_difference,
            "seed_ms": round(seed_ms, 3), "rnnkit_ms": round(rnnkit_ms, 3), "speedup": round(seed_ms / rnnkit_ms, 2)}
