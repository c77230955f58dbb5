"""Mixed precision's rule for what is summed: a loss (and a state saved) in float32, whatever
autocast computed the products in; bf16's 8 bits of mantissa would lose a sum's last digits."""

from __future__ import annotations

import torch

HALF = (torch.bfloat16, torch.float16)


def widened(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when autocast made it bf16 or fp16; as it is otherwise (float64 stays)."""
    return x.float() if x.dtype in HALF else x
