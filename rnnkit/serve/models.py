"""Each model kind as the server sees it: a ``Served`` of its kind (``rnnkit.kinds`` says which),
with what ``/v1/models`` says of it and its endpoints: each a request body (pydantic) and a
coroutine that answers it. The work runs on the model's thread (``Context.on_model``); the app
does the HTTP, the limits' statuses and the metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import load_model
from rnnkit.kinds import lookup
from rnnkit.serve.limits import Deadline, Limits


@dataclass
class Context:
    """What an endpoint may use of the app: the limits, and the model's thread."""

    limits: Limits
    on_model: Callable[..., Awaitable[Any]]  # on_model(function, *args): its result, run off the event loop
    batcher: Callable[..., Any]  # batcher(function): a Batcher that runs function(items) on the model's thread
    deadline: Deadline | None = None  # a request's, once it has arrived

    def for_request(self) -> Context:
        """This context for a request that arrives now: its work on the model's thread must begin
        before the deadline (``limits.deadline_s``), or it is dropped from the queue, the thread
        stays free for others, and the request gets 503. (Work already running ends first; a kind
        splits a long request into calls, so that the thread is never held long.) A batcher's
        ``submit(items, deadline)`` keeps the same rule."""
        deadline = Deadline.after(self.limits.deadline_s)
        run = self.on_model

        async def on_model(function: Callable[..., Any], *args: Any) -> Any:
            return await deadline.wait(run(deadline.run, function, *args))

        return replace(self, on_model=on_model, deadline=deadline)


class Served:
    """A model being served under ``name``. A kind's subclass lists its ``endpoints`` (name →
    request body) and answers each with ``async def <name>(self, request, context)``."""

    endpoints: ClassVar[dict[str, type[BaseModel]]] = {}

    def __init__(self, name: str, model: Any, path: Path) -> None:
        self.name, self.model, self.path = name, model, path

    @property
    def kind(self) -> str:
        return self.model.config.kind

    def describe(self) -> dict[str, Any]:
        engine = getattr(self.model, "engine", None)
        return {"name": self.name, "kind": self.kind, "vocab_size": len(self.vocab()),
                "engine": getattr(engine, "name", None), "device": str(getattr(engine, "device", "cpu"))}

    def vocab(self) -> Any:
        return self.model.vocab

    def card(self) -> str | None:
        """The model card (README.md) of its directory; None for a directory written before cards,
        or one whose card is not a plain file of at most 1 MiB (the model serves all the same)."""
        from rnnkit.fsutil import own_file
        from rnnkit.io.card import CARD

        try:
            return own_file(Path(self.path), CARD, 1 << 20).read_text(encoding="utf-8", errors="replace")
        except (RnnkitError, OSError):
            return None

    def token_count(self, text: str) -> int:
        """Tokens of ``text`` as the model reads it (for the per-text limit)."""
        return len(text.split())

    def start(self, context: Context) -> None:
        """Called once the app is made (a language model starts its batcher here)."""

    async def check_texts(self, context: Context, texts: Sequence[str], what: str) -> list[int]:
        """The count, each text's tokens and their sum within the limits; each text's tokens.
        Tokenizing runs on a worker thread (neither the event loop, where it would hold every
        client, nor the model's thread)."""
        context.limits.check_count(what, len(texts))
        lengths = await asyncio.to_thread(lambda: [self.token_count(t) for t in texts])
        context.limits.check_tokens(lengths)
        context.limits.check_work(sum(lengths), f"the tokens of the {what}")
        return lengths


def _unicode(text: str) -> str:
    """A JSON string may hold a lone surrogate (``"\\ud800"``): no text, and nothing can encode it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (a lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_unicode)]


class Request(BaseModel):
    """A request body: a field it does not know (a typo such as ``temprature``) is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")
Group = Annotated[list[Text], Field(min_length=1)]


# ------------------------------------------------------------------------------ language models

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


# ------------------------------------------------------------------------------ rankers

class RankRequest(Request):
    context: Text = Field(min_length=1)
    candidates: list[Text] | None = None
    top: int = Field(10, ge=1)


class ChatRequest(Request):
    turns: list[Text] = Field(min_length=1)  # the conversation so far, plain text; the last turn the person's
    top: int = Field(1, ge=1)


class ServedRanker(Served):
    endpoints = {"rank": RankRequest, "chat": ChatRequest}

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


# ------------------------------------------------------------------------------ encoder–decoders

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


# ------------------------------------------------------------------------------ opening

def open_served(spec: str, *, engine: str = "auto", device: str = "auto") -> Served:
    """A model directory given as ``PATH`` or ``NAME=PATH``, served as its kind says."""
    name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
    path_ = Path(path)
    name = name or path_.resolve().name
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise RnnkitError(f"model name {name!r}: use letters, digits, '-', '_' and '.' (give NAME=PATH)")
    files = load_model(path_)
    kind = lookup(files.kind)
    return kind.part("serve")(name, kind.part("open")(files, engine=engine, device=device), path_)


def attach_responses(served: dict[str, Served], spec: str) -> None:
    """``NAME=DATA``: the training responses of ranking dataset DATA become ranker NAME's repository."""
    name, _, data = spec.partition("=")
    if not isinstance(served.get(name), ServedRanker) or not data:
        raise RnnkitError(f"--responses {spec!r}: give NAME=DATA for a ranker being served")
    served[name].attach_responses(data)
