"""Connections, bounded: how many the server holds, and how long a client may take to send a
request's head. uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) but neither
the time a request's head may take to arrive nor how many connections are open, so a client
that sends one header line every few seconds (a slow-loris) would hold a connection — a file
descriptor — for ever, and thousands of them the server's every descriptor. ``guarded``
makes uvicorn's own HTTP/1.1 protocol (h11) hold both bounds:

* a request's head must arrive within ``head_timeout`` seconds of its first byte (or of the
  connection, for the first request); a client slower than that is disconnected;
* at most ``max_connections`` are open: a new one beyond them takes the place of the connection
  that has waited longest for a request's head (a slow client), or, if every one is busy with a
  request, is closed at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from rnnkit.serve.options import Connections


def guarded(connections: Connections) -> type[H11Protocol]:
    """uvicorn's h11 protocol with ``connections``' bounds (pass it as ``uvicorn.run(http=...)``)."""
    return type("GuardedH11Protocol", (_Guarded,), {"head_timeout": connections.head_timeout_s,
                                                    "max_connections": connections.max_connections,
                                                    "waiting": {}})


class _Guarded(H11Protocol):
    head_timeout: float
    max_connections: int
    waiting: dict[_Guarded, float]  # connections waiting for a request's head, oldest first (a class's own)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_timer: asyncio.TimerHandle | None = None
        self._await_head()
        if len(self.connections) > self.max_connections:
            slowest = next((c for c in self.waiting if c is not self), None)
            (slowest or self)._drop()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._await_head()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._head_arrived()

    def _await_head(self) -> None:
        self.head_timer = self.loop.call_later(self.head_timeout, self._drop)
        self.waiting[self] = time.monotonic()

    def _head_arrived(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        self.waiting.pop(self, None)

    def _drop(self) -> None:
        """Disconnect: too slow, or the slowest when a connection needed its place."""
        self._head_arrived()
        if not self.transport.is_closing():
            self.transport.close()


# Connections waiting to be accepted. asyncio accepts up to this many in one turn of its loop, before
# the cap above can close any: the most descriptors held beyond max_connections (uvicorn's 2048 is
# more than a small server needs; nginx's default is 511).
BACKLOG = 256


def uvicorn_settings(connections: Connections) -> dict[str, Any]:
    """What ``uvicorn.run`` takes for ``connections``."""
    return {"http": guarded(connections), "timeout_keep_alive": connections.keep_alive_s, "backlog": BACKLOG}
