"""float32 against bf16 autocast on this CPU, side by side: one output-layer product, then training.

    python benchmarks/precision.py PREPARED [--steps 300] [train options ...]

First the recommended recipe's output product (a 32 × 35 batch of 256-wide states by a
7,677-word matrix, kjv-lm's size) in each precision. Then ``rnnkit train PREPARED --max-steps N``
twice, one after the other, with ``--precision fp32`` and ``--precision bf16``: tokens/s and the
validation perplexity after the same steps (the same data, the same initial weights), so the
ratio of speeds is at equal quality per step or says by how much it is not.
"""

from __future__ import annotations

import argparse

import torch
from steps import mean_ms
from train_variants import compare

from rnnkit.models.engine import cpu_has_bf16


def product_ms(dtype: torch.dtype, repeats: int = 30) -> float:
    states, words = torch.randn(32 * 35, 256).to(dtype), torch.randn(7677, 256).to(dtype)
    return mean_ms(lambda: states @ words.T, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared")
    parser.add_argument("--steps", type=int, default=300)
    args, options = parser.parse_known_args()
    print(f"this CPU computes bf16 in hardware: {cpu_has_bf16()}; torch threads: {torch.get_num_threads()}")
    f32, bf16 = product_ms(torch.float32), product_ms(torch.bfloat16)
    print(f"output product 1120 × 256 · 256 × 7677: float32 {f32:.1f} ms, bf16 {bf16:.1f} ms ({f32 / bf16:.2f}×)")
    compare(args.prepared, "precision", ["fp32", "bf16"], ["--max-steps", str(args.steps), *options])


if __name__ == "__main__":
    main()
