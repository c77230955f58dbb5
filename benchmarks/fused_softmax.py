"""The output layer's loss, forward and backward, two ways side by side: PyTorch's own
``cross_entropy`` over the logits, and rnnkit's fused loss (one product, one softmax pass, the
error made in place of the probabilities).

    python benchmarks/fused_softmax.py [--rows 1120] [--vocabulary 7677] [--width 256] [--repeats 20]

The default sizes are the recommended recipe's step on kjv-lm (32 × 35 positions, 256-wide
states, 7,677 words). Each way runs in float32 and, where the CPU computes it, in bf16 autocast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from steps import mean_ms

import rnnkit.models.torch.lm as torch_lm
from rnnkit.models.engine import cpu_has_bf16


def pytorch_loss(states, V, bias, targets, weights):
    losses = F.cross_entropy(F.linear(states, V, bias).float(), targets, reduction="none")
    return (losses * weights).sum()


def fused(states, V, bias, targets, weights):
    return torch_lm.SoftmaxCrossEntropy.apply(states, V, bias, targets, weights)


def milliseconds(loss_of: Callable, tensors: tuple, precision: str, repeats: int) -> float:
    states, V, bias, targets, weights = tensors

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_of(states, V, bias, targets, weights)
        loss.backward()
        for t in (states, V, bias):
            t.grad = None

    return mean_ms(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=32 * 35)
    parser.add_argument("--vocabulary", type=int, default=7677)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    tensors = ((torch.randn(args.rows, args.width, generator=g) * 0.5).requires_grad_(),
               (torch.randn(args.vocabulary, args.width, generator=g) * 0.1).requires_grad_(),
               torch.zeros(args.vocabulary, requires_grad=True),
               torch.randint(0, args.vocabulary, (args.rows,), generator=g), torch.ones(args.rows))
    print(f"{args.rows} positions × {args.vocabulary:,} words, states {args.width} wide; forward and backward, "
          f"{torch.get_num_threads()} threads")
    for precision in ("fp32", "bf16") if cpu_has_bf16() else ("fp32",):
        times = {name: milliseconds(way, tensors, precision, args.repeats) for name, way in
                 (("PyTorch cross_entropy", pytorch_loss), ("rnnkit's fused loss", fused))}
        base = times["PyTorch cross_entropy"]
        for name, ms in times.items():
            print(f"  {precision}  {name:<22} {ms:7.1f} ms  {base / ms:4.2f}× PyTorch's")


if __name__ == "__main__":
    main()
