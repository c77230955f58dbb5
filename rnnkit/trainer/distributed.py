"""Training on many processes: where this process stands, from ``torchrun``'s environment.

``torchrun`` starts one process per device and tells each its ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; ``join`` opens PyTorch's process group (nccl on CUDA, gloo on CPU) and returns
this process's ``Placement``. Gradients are averaged by DistributedDataParallel (the torch
engine's ``parallel``); the loop needs only the few collectives below, all PyTorch's own: sums
that keep every process's decisions in step, a broadcast of the main process's evaluation, and
gathering the carried state for a checkpoint. A run of one process never touches
``torch.distributed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from rnnkit.errors import RnnkitError

BACKENDS = ("nccl", "gloo")
T = TypeVar("T")
B = TypeVar("B")


@dataclass(frozen=True)
class Placement:
    """This process's place in a run of ``world_size`` processes (``local_rank``: on its machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    def share(self, rows: int) -> slice:
        """This process's contiguous part of ``rows`` rows (the first processes take one more
        when they do not divide evenly)."""
        size, extra = divmod(rows, self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return slice(start, start + size + (self.rank < extra))

    def own(self, batch: B) -> B:
        """This process's share of the rows of a whole step's ``batch`` (anything with ``size``
        and ``rows``)."""
        return batch.rows(self.share(batch.size)) if self.parallel else batch

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes (float64)."""
        if not self.parallel:
            return list(values)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, value: Any) -> Any:
        """The main process's ``value``, on every process."""
        if not self.parallel:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_rows(self, array: np.ndarray) -> np.ndarray:
        """Every process's rows of a state (batch on axis -2), in rank order: the whole batch's state."""
        if not self.parallel:
            return array
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, array)
        return np.concatenate(parts, axis=-2)

    def own_rows(self, array: np.ndarray) -> np.ndarray:
        """This process's rows of a whole batch's state (batch on axis -2)."""
        return array[..., self.share(array.shape[-2]), :]

    def main_first(self, action: Callable[[], T]) -> T | None:
        """``action()`` on the main process (its result there, None elsewhere) while the others
        wait; when it refuses (RnnkitError), every process raises the same error."""
        result, error = None, None
        if self.is_main:
            try:
                result = action()
            except RnnkitError as e:
                if not self.parallel:
                    raise
                error = str(e)
        error = self.broadcast(error)
        if error is not None:
            raise RnnkitError(error)
        return result

    def barrier(self) -> None:
        if self.parallel:
            import torch.distributed as dist

            dist.barrier()


def _collective_device() -> str:
    import torch.distributed as dist

    return f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if dist.get_backend() == "nccl" else "cpu"


def launched() -> bool:
    """Whether ``torchrun`` (or another launcher setting its variables) started this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Whether this process is the one that tells the run (the only one, without a launcher)."""
    return not launched() or int(os.environ.get("RANK", "0")) == 0


def join(device: str, backend: str | None = None) -> Placement:
    """This process's Placement; under a launcher, the process group is opened first (``backend``:
    nccl for CUDA, gloo for CPU, unless given). ``device`` is the run's ("cpu" or "cuda")."""
    if not launched():
        return Placement()
    import torch
    import torch.distributed as dist

    backend = backend or ("nccl" if device == "cuda" else "gloo")
    if backend not in BACKENDS:
        raise RnnkitError(f"unknown --backend {backend!r}; use nccl (CUDA) or gloo (CPU)")
    if backend == "nccl" and device != "cuda":
        raise RnnkitError("the nccl backend runs on CUDA devices only; use --backend gloo on CPU")
    placement = Placement(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if device == "cuda":
        torch.cuda.set_device(placement.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return placement


def leave(placement: Placement) -> None:
    """Close the process group that ``join`` opened."""
    if placement.parallel:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
