"""The full softmax against the adaptive one, as the vocabulary grows: training steps per second.

    python benchmarks/adaptive_softmax.py [--vocab 8000 50000 250000] [--seconds 10]

One torch training step of the recommended model's shape (one LSTM layer of 256, batch 32 × 35,
Adam) on targets drawn from a Zipf law over the vocabulary (as words are), for each vocabulary size,
full softmax then adaptive (cutoffs from those frequencies, as ``rnnkit train --softmax adaptive``
chooses them), one after the other in this process; the ratio is the speed-up.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rnnkit.data.batching import Batch
from rnnkit.lm.config import LMConfig
from rnnkit.models.engine import open_engine
from rnnkit.models.schema import init_params

HIDDEN, BATCH, BPTT = 256, 32, 35


def zipf_cutoffs(shares: np.ndarray, width: int, coverage: tuple[float, ...] = (0.9, 0.98)) -> list[int]:
    """``rnnkit.lm.config.frequency_cutoffs``'s rule, on given word shares."""
    cumulative = np.cumsum(shares)
    cutoffs = [int(np.searchsorted(cumulative, c)) + 1 for c in coverage]
    return [c for i, c in enumerate(cutoffs) if c < len(shares) - 1 and (not i or c > cutoffs[i - 1])]


def tokens_per_second(config: LMConfig, targets: np.ndarray, seconds: float) -> float:
    engine = open_engine(config, init_params(config, np.random.RandomState(0)), engine="torch", device="cpu",
                         optimizer="adam", clip=0.25)
    x, y = targets[:, :-1], targets[:, 1:]
    batch = Batch(x, y, np.ones_like(x, dtype=bool))
    h = engine.initial_state(BATCH)
    engine.train_step(batch, 0.002, 1.0 / x.size, h)  # warm-up: allocations, first-call costs
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        engine.train_step(batch, 0.002, 1.0 / x.size, h)
        steps += 1
    return steps * x.size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, nargs="+", default=[8000, 50000, 250000])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; LSTM {HIDDEN}, batch {BATCH} × {BPTT}")
    print(f"{'vocabulary':>10}  {'cutoffs':<16} {'full tokens/s':>14} {'adaptive tokens/s':>18} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for vocab in args.vocab:
        shares = 1.0 / np.arange(1, vocab + 1)
        shares /= shares.sum()
        targets = rng.choice(vocab, size=(BATCH, BPTT + 1), p=shares)
        cutoffs = zipf_cutoffs(shares, HIDDEN)
        full = tokens_per_second(LMConfig("lstm", vocab, HIDDEN, tie=True), targets, args.seconds)
        adaptive = tokens_per_second(LMConfig("lstm", vocab, HIDDEN, cutoffs=tuple(cutoffs)), targets, args.seconds)
        print(f"{vocab:>10,}  {','.join(map(str, cutoffs)):<16} {full:>14,.0f} {adaptive:>18,.0f} "
              f"{adaptive / full:>5.1f}×", flush=True)


if __name__ == "__main__":
    main()
