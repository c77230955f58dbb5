"""What one request may ask for: beyond a limit the answer is 413 (the body) or 422 (the
rest), with a message naming the limit and its flag."""

from __future__ import annotations

from dataclasses import dataclass


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

    def check_count(self, what: str, n: int) -> None:
        if n > self.max_sentences:
            raise LimitExceeded(f"{n} {what} in one request; the limit is {self.max_sentences} "
                                "(--max-sentences)")

    def check_tokens(self, lengths: list[int]) -> None:
        longest = max(lengths, default=0)
        if longest > self.max_tokens:
            raise LimitExceeded(f"a text of {longest} tokens; the limit is {self.max_tokens} per text (--max-tokens)")

    def check_generate(self, n: int, length: int) -> None:
        if n > self.max_generate:
            raise LimitExceeded(f"n={n}; the limit is {self.max_generate} per request (--max-generate)")
        if length > self.max_length:
            raise LimitExceeded(f"a length of {length}; the limit is {self.max_length} (--max-length)")
