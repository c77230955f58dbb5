"""A language model as the server sees it: /score (batched across requests), /generate, /rerank."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from rnnkit.serve.models import Context, Request, Served, Text

Group = Annotated[list[Text], Field(min_length=1)]

class ScoreRequest(Request):
    sentences: list[Text] = Field(min_length=1)
    per_token: bool = False


class GenerateRequest(Request):
    n: int = Field(1, ge=1)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    temperature: float = Field(1.0, gt=0, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    prime: Text | None = None
    min_length: int = Field(7, ge=0)
    max_length: int | None = Field(None, ge=1)  # default: the server's --max-length, at most 100


class RerankRequest(Request):
    groups: list[Group] = Field(min_length=1)
    length_norm: bool = False


class ServedLM(Served):
    endpoints = {"score": ScoreRequest, "generate": GenerateRequest, "rerank": RerankRequest}

    def describe(self) -> dict[str, Any]:
        cache = None if self.model.cache is None else self.model.cache.to_dict()
        return {**super().describe(), "level": self.model.text.level, "cache": cache}

    def token_count(self, text: str) -> int:
        return len(self.model.tokenize(text))

    def start(self, context: Context) -> None:
        self.batcher = context.batcher(self._score_items)  # /score requests that arrive together: one call

    async def score(self, request: ScoreRequest, context: Context) -> list[dict[str, Any]]:
        await self.check_texts(context, request.sentences, "sentences")
        text = object()  # a request's sentences are one text to the cache: it remembers none of another request's
        return await self.batcher.submit([(s, request.per_token, text) for s in request.sentences], context.deadline)

    async def generate(self, request: GenerateRequest, context: Context) -> list[str]:
        length = request.max_length or min(100, context.limits.max_length)
        context.limits.check_generate(request.n, length)
        context.limits.check_work(request.n * length, "n × the length of each text")
        if request.prime is not None:  # the text to start from is bounded as any input text is
            await self.check_texts(context, [request.prime], "prime")
        options = {**request.model_dump(), "max_length": length, "length": length}  # length: a character model's
        return await context.on_model(lambda: self.model.generate(**options))

    async def rerank(self, request: RerankRequest, context: Context) -> list[dict[str, Any]]:
        await self.check_texts(context, [c for g in request.groups for c in g], "candidates")
        return await context.on_model(lambda: self.model.rerank(request.groups, length_norm=request.length_norm))

    def _score_items(self, items: list[tuple[str, bool, object]]) -> list[dict[str, Any]]:
        """One batch of (sentence, per_token, its request's text) from many requests, scored in one call."""
        per_token = any(p for _, p, _ in items)
        scores = self.model.score([s for s, _, _ in items], per_token=per_token, documents=[t for _, _, t in items])
        results = [s.as_dict() for s in scores]
        if per_token:
            for result, (_, wanted, _) in zip(results, items):
                if not wanted:
                    result.pop("token_probs", None)
        return results
