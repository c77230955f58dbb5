"""Dynamic batching: requests that arrive close together run through the model as one batch.

A request's items (sentences) join a queue. One worker per model takes them: it waits until the
oldest item has waited ``window_ms`` (or ``max_items`` are waiting), then runs everything
waiting in one call on the model's thread, so the event loop keeps answering (``/health``)
while it runs. Whatever arrives during that call is the next batch: the busier the server, the
larger its batches. Each request then gets its own slice of the results. A window of 0 runs
each request alone: the batch-of-one server the benchmark compares with. A request not answered
by its deadline gets ``DeadlineExceeded``; if its items have not yet joined a batch, they never do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from rnnkit.serve.limits import Deadline


class Batcher:
    def __init__(self, run: Callable[[list[Any]], Sequence[Any]], executor: Executor, *, window_ms: float,
                 max_items: int = 256, on_batch: Callable[[int], None] | None = None) -> None:
        self.run, self.executor, self.window, self.max_items = run, executor, window_ms / 1000, max_items
        self.on_batch = on_batch or (lambda n: None)
        self.waiting: list[tuple[list[Any], asyncio.Future, float]] = []
        self.arrived: asyncio.Event | None = None
        self.worker: asyncio.Task | None = None

    async def submit(self, items: list[Any], deadline: Deadline | None = None) -> list[Any]:
        """The results of ``items``, in order, computed in a batch with whatever else arrived."""
        loop = asyncio.get_running_loop()
        if self.window <= 0:
            self.on_batch(len(items))
            future = loop.run_in_executor(self.executor, self.run, items) if deadline is None else \
                loop.run_in_executor(self.executor, deadline.run, self.run, items)
        else:
            if self.worker is None or self.worker.done() or self.worker.get_loop() is not loop:
                # (A worker of another event loop, one that has stopped, would never run: an app
                # driven by one test client after another starts a new loop each time.)
                self.waiting = [w for w in self.waiting if w[1].get_loop() is loop]
                self.arrived = asyncio.Event()
                self.worker = asyncio.create_task(self._work())
            future = loop.create_future()
            self.waiting.append((items, future, time.perf_counter()))
            self.arrived.set()
        # At the deadline the future is cancelled: a batch formed after that leaves its items out.
        return list(await (future if deadline is None else deadline.wait(future)))

    def _waiting_items(self) -> int:
        return sum(len(items) for items, _, _ in self.waiting)

    async def _work(self) -> None:
        while True:
            await self.arrived.wait()
            # Until the oldest request has waited the window, or the batch is full.
            while self._waiting_items() < self.max_items:
                left = self.window - (time.perf_counter() - self.waiting[0][2])
                if left <= 0:
                    break
                self.arrived.clear()
                try:
                    await asyncio.wait_for(self.arrived.wait(), left)
                except TimeoutError:
                    break
            batch, taken = [], 0
            while self.waiting and (not batch or taken + len(self.waiting[0][0]) <= self.max_items):
                request = self.waiting.pop(0)
                if not request[1].done():  # done before it ran: cancelled at its deadline
                    batch.append(request)
                    taken += len(request[0])
            if not self.waiting:
                self.arrived.clear()
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[tuple[list[Any], asyncio.Future, float]]) -> None:
        items = [item for request, _, _ in batch for item in request]
        self.on_batch(len(items))
        try:
            results = list(await asyncio.get_running_loop().run_in_executor(self.executor, self.run, items))
        except Exception as e:  # every request of the batch hears of it
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(e)
            return
        start = 0
        for request, future, _ in batch:
            if not future.done():
                future.set_result(results[start:start + len(request)])
            start += len(request)
