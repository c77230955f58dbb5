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


class LimitExceeded(Exception):
    """A request beyond a limit: ``status`` 413 or 422 and a message that names the limit."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20
    max_sentences: int = 256  # per request: sentences to score, candidates to rank, sources to translate
    max_tokens: int = 400  # per sentence
    max_generate: int = 64  # sentences per /generate request
    max_length: int = 200  # tokens (characters, for a character model) of one generated text or translation
    max_work: int = 1 << 17  # tokens the model may read or write for one request, beams and attention counted
    deadline_s: float = 30.0  # a request's work not begun by then is dropped, and it is answered 503

    def check_count(self, what: str, n: int) -> None:
        if n > self.max_sentences:
            raise LimitExceeded(f"{n} {what} in one request; the limit is {self.max_sentences} "
                                "(--max-sentences)")

    def check_tokens(self, lengths: list[int]) -> None:
        longest = max(lengths, default=0)
        if longest > self.max_tokens:
            raise LimitExceeded(f"a text of {longest} tokens; the limit is {self.max_tokens} per text (--max-tokens)")

    def check_work(self, work: int, how: str) -> None:
        """``work``: the tokens the model would read or write for the request (``how`` says how it was counted)."""
        if work > self.max_work:
            raise LimitExceeded(f"this request is {work:,} tokens of work ({how}); the limit is {self.max_work:,} "
                                "per request (--max-work): send fewer or shorter texts, or a narrower beam")

    def check_generate(self, n: int, length: int) -> None:
        if n > self.max_generate:
            raise LimitExceeded(f"n={n}; the limit is {self.max_generate} per request (--max-generate)")
        if length > self.max_length:
            raise LimitExceeded(f"a length of {length}; the limit is {self.max_length} (--max-length)")


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
            if received > limit:
                await drain()
                raise BodyTooLarge(f"a body of more than {limit:,} bytes; the limit is {limit:,} (--max-body-bytes)")
        return message

    return counting
