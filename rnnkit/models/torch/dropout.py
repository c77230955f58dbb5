"""Dropout whose masks take a quarter of the random draws.

``F.dropout`` draws one number from the generator for each element, and on a CPU those draws are
the cost: 2.4 ms for a 32 × 35 × 256 batch here, as long as the output layer's softmax. This draws
64 random bits for every four elements: each element's 16 bits keep it when they fall below
keep × 2¹⁶, and a kept element is scaled by 1 / (the fraction that threshold keeps exactly), so
the expectation is the input's, as with ``F.dropout`` (``benchmarks/dropout_masks.py``).
"""

from __future__ import annotations

import torch

_LEVELS = 1 << 16
_INT64 = torch.iinfo(torch.int64)


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """``x`` with each element zeroed with probability ``p`` (to 1/65,536) and the rest scaled up."""
    if p == 0.0:
        return x
    threshold = round((1.0 - p) * _LEVELS)  # an element is kept when its 16 bits, unsigned, are below this
    if threshold == 0:
        return x * 0.0
    n = x.numel()
    words = torch.randint(_INT64.min, _INT64.max, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    bits = words.view(torch.int16)[:n].view(x.shape)  # signed: unsigned u is u − 2¹⁵ here
    keep = bits < threshold - _LEVELS // 2
    return x * (keep.to(x.dtype) * (_LEVELS / threshold))
