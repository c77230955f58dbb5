"""Dynamic batching: requests that arrive within a short window are run as one batch.

A request's items (sentences) join a queue; the first one opens a window of ``window_ms``, and
when it closes (or ``max_items`` are waiting) everything waiting goes to the model in one call,
on the model's own thread, so the event loop keeps answering (``/health``) while it runs. Each
request then gets its own slice of the results. A window of 0 runs each request alone: the
batch-of-one server the benchmark compares with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any


class Batcher:
    def __init__(self, run: Callable[[list[Any]], Sequence[Any]], executor: Executor, *, window_ms: float,
                 max_items: int = 256, on_batch: Callable[[int], None] | None = None) -> None:
        self.run, self.executor, self.window, self.max_items = run, executor, window_ms / 1000, max_items
        self.on_batch = on_batch or (lambda n: None)
        self.waiting: list[tuple[list[Any], asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None  # the task whose window is open
        self.running: set[asyncio.Task] = set()  # flushers alive (asyncio keeps only weak references)
        self.full = asyncio.Event()

    async def submit(self, items: list[Any]) -> list[Any]:
        """The results of ``items``, in order, computed in a batch with whatever else arrived."""
        loop = asyncio.get_running_loop()
        if self.window <= 0:
            self.on_batch(len(items))
            return list(await loop.run_in_executor(self.executor, self.run, items))
        future = loop.create_future()
        self.waiting.append((items, future))
        if sum(len(i) for i, _ in self.waiting) >= self.max_items:
            self.full.set()
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush_after_window())
            self.running.add(self.flusher)
            self.flusher.add_done_callback(self.running.discard)
        return await future

    async def _flush_after_window(self) -> None:
        try:
            await asyncio.wait_for(self.full.wait(), self.window)
        except TimeoutError:
            pass
        self.full.clear()
        # What arrives from now on waits for the next window, which opens while this batch runs.
        batch, self.waiting, self.flusher = self.waiting, [], None
        items = [item for request, _ in batch for item in request]
        self.on_batch(len(items))
        try:
            results = list(await asyncio.get_running_loop().run_in_executor(self.executor, self.run, items))
        except Exception as e:  # every request of the batch hears of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            return
        start = 0
        for request, future in batch:
            if not future.done():
                future.set_result(results[start:start + len(request)])
            start += len(request)
