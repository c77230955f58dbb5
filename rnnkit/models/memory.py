"""Keeping freed memory for reuse, so that each training step does not fault its pages in again.

glibc's malloc hands large blocks straight to the kernel (mmap) and returns them on free, and it
gives back the top of its heap once enough there is free. A training step makes and frees the same
large arrays every step (the tokens × vocabulary logits and their gradient, the recurrence's
buffers), so each step faults every 4 KiB page of them in again, and the kernel zeroes each one:
3,500 to 10,000 faults a step for the recommended recipe on kjv-lm, and up to a tenth of the
step on this project's virtual machines (``benchmarks/retain_memory.py`` measures it side by side). Told to
serve every block from its heap and to keep what is freed, malloc reuses the same pages from step
to step. (PyTorch's CPU tuning guide suggests jemalloc or tcmalloc for the same reason; this needs
neither.) The cost: the process keeps its peak memory until it exits.

``RNNKIT_RETAIN_MEMORY=0`` leaves malloc as it is. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt's parameters, from glibc's <malloc.h>


@functools.cache
def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return None


def retain_freed_memory() -> bool:
    """Have malloc keep freed memory for reuse: True when the setting took. Idempotent."""
    mallopt = _mallopt()
    if mallopt is None or os.environ.get("RNNKIT_RETAIN_MEMORY") == "0":
        return False
    # Never trim the heap; serve no block by mmap (so none goes back to the kernel on free).
    return mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and mallopt(_M_MMAP_MAX, 0) == 1
