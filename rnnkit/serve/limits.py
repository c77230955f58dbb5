"""What one request may ask for: beyond a limit the answer is 413 (the body) or 422 (the
rest), with a message naming the limit and its flag; a request not answered by its deadline
is 503."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from rnnkit.serve.options import LimitExceeded, Limits  # noqa: F401  (declared there, beside the other flags)


class DeadlineExceeded(LimitExceeded):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request was not answered within the server's deadline of {seconds:g} s (--deadline); "
                         "the model is busy or the request is large: try again, or ask for less", 503)


@dataclass(frozen=True)
class Deadline:
    """When a request's answer is due (``time.monotonic()``), ``seconds`` after it arrived."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def passed(self) -> bool:
        return time.monotonic() > self.at

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def error(self) -> DeadlineExceeded:
        return DeadlineExceeded(self.seconds)

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)``, if the deadline has not passed: work not begun by then is dropped."""
        if self.passed():
            raise self.error()
        return function(*args)

    async def wait(self, awaitable: Awaitable[Any]) -> Any:
        """What ``awaitable`` gives, if it comes before the deadline (at the deadline it is cancelled)."""
        try:
            return await asyncio.wait_for(awaitable, self.left())
        except TimeoutError:
            raise self.error() from None


class BodyTooLarge(HTTPException):
    """A body over the limit (an HTTPException: FastAPI passes it on from a body read as it is)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


DRAIN_BYTES = 1 << 28  # read and dropped after an early 413, so that a client still sending reads the answer


def counted_body(receive, limit: int, declared: bytes):
    """``receive`` (ASGI), counting the request body as it streams in, whatever its transfer
    encoding, so that memory stays bounded by ``limit``: over it (or with a declared
    ``Content-Length`` over it, before any of it is read) it raises ``BodyTooLarge``. What the
    client is still sending is read and dropped first (up to ``DRAIN_BYTES``): a client that
    writes its whole body before reading (Python's urllib, requests) then reads the 413 instead
    of a reset connection."""
    received, finished = 0, False

    async def drain() -> None:
        nonlocal finished
        dropped = 0
        while not finished and dropped < DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            dropped += len(message.get("body", b""))
            finished = not message.get("more_body", False)
        finished = True

    async def counting():
        nonlocal received, finished
        if declared.isdigit() and int(declared) > limit:
            await drain()
            raise BodyTooLarge(f"a body of {int(declared):,} bytes; the limit is {limit:,} (--max-body-bytes)")
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            finished = not message.get("more_body", False)
            if b"\x00" in message.get("body", b""):  # JSON in UTF-8 never holds a NUL byte; in UTF-16 or -32 it must
                await drain()
                raise HTTPException(400, "not UTF-8")  # answered as the app answers bytes that are not UTF-8
            if received > limit:
                await drain()
                raise BodyTooLarge(f"a body of more than {limit:,} bytes; the limit is {limit:,} (--max-body-bytes)")
        return message

    return counting
