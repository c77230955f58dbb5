"""A ranker as the server sees it: /rank (given candidates, or its repository) and /chat."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from rnnkit.errors import RnnkitError
from rnnkit.serve.models import Context, Request, Served, Text


class RankRequest(Request):
    context: Text = Field(min_length=1)
    candidates: list[Text] | None = None
    top: int = Field(10, ge=1)


class ChatRequest(Request):
    turns: list[Text] = Field(min_length=1)  # the conversation so far, plain text; the last turn the person's
    top: int = Field(1, ge=1)


class ServedRanker(Served):
    endpoints = {"rank": RankRequest, "chat": ChatRequest}
    takes_responses = True

    def __init__(self, name: str, model: Any, path: Path) -> None:
        super().__init__(name, model, path)
        self.repository: tuple[str, ...] = ()  # responses to search when a request gives no candidates

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "repository": len(self.repository)}

    def vocab(self) -> Any:
        return self.model.ids.vocab

    async def rank(self, request: RankRequest, context: Context) -> list[dict[str, Any]]:
        await self.check_texts(context, [request.context, *(request.candidates or [])], "texts")
        return await context.on_model(self._rank, request.context, request.candidates, request.top)

    def _rank(self, context: str, candidates: Sequence[str] | None, top: int) -> list[dict[str, Any]]:
        if candidates is not None:
            return self.model.rank(context, list(candidates))[:top]
        if not self.repository:
            raise RnnkitError(f"{self.name} has no response repository: give candidates, or start the server "
                              f"with --responses {self.name}=DATA")
        return self.model.rank_repository(context, self.repository, top=top)

    async def chat(self, request: ChatRequest, context: Context) -> list[dict[str, Any]]:
        """The repository's best responses after the conversation's last turns."""
        from rnnkit.rank.chat import answer, context_of

        await self.check_texts(context, request.turns, "turns")
        if not self.repository:
            raise RnnkitError(f"{self.name} has no response repository: start the server with --responses "
                              f"{self.name}=DATA")
        top = min(request.top, len(self.repository))
        return await context.on_model(lambda: answer(self.model, self.repository, context_of(request.turns), top))

    def attach_responses(self, data: str | Path) -> None:
        """The training responses of ranking dataset ``data`` become the repository."""
        from rnnkit.rank.data import training_responses

        self.repository = training_responses(data)
