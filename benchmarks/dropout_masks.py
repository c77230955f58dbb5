"""Dropout on the recommended recipe's batch (32 × 35 × 256), torch's ``F.dropout`` against
rnnkit's (``rnnkit/models/torch/dropout.py``: four 16-bit masks from each 64-bit draw), side by side.

    python benchmarks/dropout_masks.py [--repeats 200]

Forward and backward, in float32 and bf16, with the fraction each kept.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from steps import mean_ms

from rnnkit.models.torch.dropout import dropout


def milliseconds(way, x: torch.Tensor, repeats: int) -> float:
    return mean_ms(lambda: way(x, 0.25).sum().backward(), repeats, warmup=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(f"p = 0.25 on 32 × 35 × 256, forward and backward, {torch.get_num_threads()} threads")
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.ones(32, 35, 256, dtype=dtype, requires_grad=True)
        theirs = milliseconds(lambda t, p: F.dropout(t, p), x, args.repeats)
        ours = milliseconds(dropout, x, args.repeats)
        kept = (dropout(x.detach(), 0.25) != 0).float().mean().item()
        print(f"  {str(dtype).removeprefix('torch.'):>8}: F.dropout {theirs:.2f} ms, rnnkit {ours:.2f} ms "
              f"({theirs / ours:.2f}×); kept {kept:.4f} (0.75 asked)")


if __name__ == "__main__":
    main()
