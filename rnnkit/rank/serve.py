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

    def token_count(self, text: str) -> int:
        return len(self.model.ids.tokens([text])[0])  # as the ranker reads it: punctuation counts

    def reading(self, context_tokens: int, candidates: int) -> int:
        """Tokens a reranker's head reads for one context and ``candidates`` (each read with the
        context); a ranker without a head reads none."""
        return candidates * (context_tokens + self.model.config.max_response) if self.model.config.reranks else 0

    async def rank(self, request: RankRequest, context: Context) -> list[dict[str, Any]]:
        lengths = await self.check_texts(context, [request.context, *(request.candidates or [])], "texts")
        pool = len(request.candidates) if request.candidates is not None else len(self.repository)
        context.limits.check_count("responses asked for (top)", min(request.top, pool))  # what it would get
        shortlist = len(request.candidates) if request.candidates is not None else \
            max(request.top, self.model.config.rerank_top)
        context.limits.check_work(sum(lengths) + self.reading(lengths[0], shortlist),
                                  "the texts' tokens, and a reranker's shortlist read with the context")
        return await context.on_model(self._rank, request.context, request.candidates, request.top)

    def _rank(self, context: str, candidates: Sequence[str] | None, top: int) -> list[dict[str, Any]]:
        if candidates is not None:
            return self.model.rank(context, list(candidates))[:top]
        return self.model.rank_repository(context, self._repository(), top=top)

    def _repository(self) -> tuple[str, ...]:
        if not self.repository:
            raise RnnkitError(f"{self.name} has no response repository: start the server with --responses "
                              f"{self.name}=DATA (or give candidates to /rank)")
        return self.repository

    async def chat(self, request: ChatRequest, context: Context) -> list[dict[str, Any]]:
        """The repository's best responses after the conversation's last turns, none repeating any
        of them (the CLI's conversation, through the same ``answer``). Only the last ``REMEMBERED``
        turns are read: what came before neither counts against the limits nor reaches the model."""
        from rnnkit.rank.chat import REMEMBERED, answer, shortlist

        turns = request.turns[-REMEMBERED:]
        lengths = await self.check_texts(context, turns, "turns")
        context.limits.check_count("responses asked for (top)", min(request.top, len(self.repository)))
        context.limits.check_work(sum(lengths) + self.reading(sum(lengths), max(shortlist(request.top),
                                                                                  self.model.config.rerank_top)),
                                  "the turns' tokens, and a reranker's shortlist read with them")
        repository = self._repository()
        top = min(request.top, len(repository))
        return await context.on_model(lambda: answer(self.model, repository, turns, top))

    def attach_responses(self, data: str | Path) -> None:
        """The training responses of ranking dataset ``data`` become the repository, encoded now
        (or read from the model's cache), before the server answers: a first request then costs
        what every other does, and encoding 15k responses never holds the event loop's GIL."""
        from rnnkit.rank.data import training_responses

        self.repository = training_responses(data)
        self.model.rank_repository(self.repository[0], self.repository, top=1)
