"""What ``rnnkit serve`` takes, each option declared once (``rnnkit.options``): what one request
may ask for (``Limits``) and how connections are held (``Connections``). The flags, their checks
and ``Limits(...)`` from Python read these declarations; this module imports neither FastAPI nor
uvicorn, so that ``rnnkit --help`` works without the serve extra."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.options import check_fields, option


class LimitExceeded(Exception):
    """A request beyond a limit: ``status`` 413 or 422 and a message that names the limit."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, each limit declared once (``rnnkit.options``): ``rnnkit
    serve``'s flags, their checks and ``Limits(...)`` from Python read it here. The upper bounds
    keep a typo from starting a server that cannot answer."""

    max_body_bytes: int = option(1 << 20, "bytes of a request's body (beyond them: 413)", bounds="[1, 1073741824]")
    max_sentences: int = option(256, "sentences, candidates, turns or sources per request, and results asked for",
                                bounds="[1, 100000]")
    max_tokens: int = option(400, "tokens of one text, as the model reads it", bounds="[1, 1000000]")
    max_generate: int = option(64, "texts per /generate request", bounds="[1, 10000]")
    max_length: int = option(200, "tokens (characters, for a character model) of one generated text or translation",
                             bounds="[1, 100000]")
    max_work: int = option(1 << 17, "tokens the model may read or write for one request: beam × source tokens for "
                                    "translate, n × length for generate, a reranker's shortlist read with the context",
                           bounds="[1, 1073741824]")
    deadline_s: float = option(30.0, "seconds within which a request is answered; past them it gets 503, the parts "
                                     "of its work not begun are dropped, and the one running ends first",
                               bounds="(0, 3600]", flag="--deadline")

    def __post_init__(self) -> None:
        check_fields(self)

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


@dataclass(frozen=True)
class Connections:
    """How the server holds connections and batches, each declared once (``rnnkit serve``'s flags)."""

    batch_window_ms: float = option(5.0, "how long /score requests wait to be batched together (0: each alone)",
                                    bounds="[0, 1000]")
    max_connections: int = option(512, "connections held open at once; beyond them a new one takes the place of "
                                       "the slowest client still sending a request's head", bounds="[2, 100000]")
    head_timeout_s: float = option(10.0, "seconds a client may take to send a request's head (its request line "
                                         "and headers); a slower one is disconnected", bounds="(0, 600]",
                                   flag="--head-timeout")
    keep_alive_s: float = option(5.0, "seconds an idle connection is kept open between requests",
                                 bounds="(0, 600]", flag="--keep-alive")

    def __post_init__(self) -> None:
        check_fields(self)
