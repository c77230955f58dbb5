"""An encoder–decoder as the server sees it: /translate, with the attention weights on request."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rnnkit.serve.models import Context, Request, Served, Text


class TranslateRequest(Request):
    sources: list[Text] = Field(min_length=1)
    beam: int = Field(1, ge=1, le=16)
    attention: bool = False


class ServedSeq2Seq(Served):
    endpoints = {"translate": TranslateRequest}
    CHUNK = 16  # sources decoded in one call on the model's thread

    def vocab(self) -> Any:
        return self.model.ids.vocab

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "level": self.model.ids.text.level}

    def token_count(self, text: str) -> int:
        return len(self.model.ids.text.split([text])[0])

    async def translate(self, request: TranslateRequest, context: Context) -> list[dict[str, Any]]:
        lengths = await self.check_texts(context, request.sources, "sources")
        # Each output about as long as its source, for each beam; attention weights, source × output.
        work = request.beam * sum(lengths) + (sum(n * n for n in lengths) if request.attention else 0)
        context.limits.check_work(work, "beam × source tokens" + (", plus the attention weights' cells"
                                                                  if request.attention else ""))
        results = []
        for start in range(0, len(request.sources), self.CHUNK):  # a few at a time: others' requests in between
            chunk = request.sources[start:start + self.CHUNK]
            results += await context.on_model(self._translate, chunk, request.beam, request.attention)
        return results

    def _translate(self, sources: list[str], beam: int, attention: bool) -> list[dict[str, Any]]:
        results = []
        for t in self.model.decode(sources, beam=beam):
            entry = {"source": t.source, "output": t.output, "log_prob": t.log_prob}
            if attention:
                entry.update(source_tokens=t.source_tokens, output_tokens=t.output_tokens,
                             attention=None if t.weights is None else t.weights.round(4).tolist())
            results.append(entry)
        return results
