"""One training step of the default dual encoder (forward and backward), its recurrence run two ways, side by side.

    python benchmarks/rank_step.py [--batch-size 64] [--repeats 10]

The torch engine runs a bidirectional encoder's rows of different lengths either packed
(``nn.utils.rnn.pack_padded_sequence``, as cuDNN wants them) or padded with each row reversed
within its length for the backward direction (``reversed_states``, what a CPU now gets). Both give
the same states (the tests hold them to the numpy engine). This times a step of the combined
ranker's module on batches shaped like chit-chat's (contexts of 20–100 tokens, responses of
5–40), each way, alternating, in float32 and under bf16 autocast, and reports the medians and
the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import numpy as np
import torch

import rnnkit.models.torch.gated as gated
from rnnkit.rank.config import RankerConfig
from rnnkit.models.schema import init_params
from rnnkit.models.torch import build


def packed(rnn, inputs, mask):
    """The packed path, as CUDA runs it."""
    lengths = mask.sum(1).cpu()
    rows = torch.nn.utils.rnn.pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
    return torch.nn.utils.rnn.pad_packed_sequence(rnn(rows)[0], batch_first=True, total_length=inputs.shape[1])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    config = RankerConfig("dual-encoder", 20000, hidden=128, bidirectional=True, pooling="max", objective="in-batch",
                          bag=True, dropout=0.3)
    module = build(config, init_params(config, np.random.RandomState(0)))
    module.train()
    rng = np.random.default_rng(0)

    def rows(low: int, high: int) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = rng.integers(low, high + 1, args.batch_size)
        T = int(lengths.max())
        ids = torch.from_numpy(rng.integers(1, 20000, (args.batch_size, T)))
        return ids, torch.arange(T)[None, :] < torch.from_numpy(lengths)[:, None]

    batch = (*rows(20, 100), *rows(5, 40))

    def step(precision: str) -> float:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = module(*batch)
        loss.backward()
        module.zero_grad()
        return time.perf_counter() - started

    for precision in ("fp32", "bf16"):
        times: dict[str, list[float]] = {"packed": [], "reversed": []}
        for way in times:  # one warm-up step each
            with mock.patch.object(gated, "reversed_states", packed if way == "packed" else gated.reversed_states):
                step(precision)
        for _ in range(args.repeats):
            for way in times:
                with mock.patch.object(gated, "reversed_states",
                                       packed if way == "packed" else gated.reversed_states):
                    times[way].append(step(precision))
        a, b = (statistics.median(times[w]) * 1000 for w in ("packed", "reversed"))
        print(f"{precision}: packed {a:.0f} ms, reversed {b:.0f} ms per step of {args.batch_size} pairs "
              f"(median of {args.repeats}): {a / b:.2f}x")


if __name__ == "__main__":
    main()
