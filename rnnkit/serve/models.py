"""A model as the server sees it: a ``Served``, subclassed by each kind in its package (``serve``
in its record, ``rnnkit.kinds``), with what ``/v1/models`` says of it and its endpoints: each a
request body (pydantic, a ``Request``) and a coroutine that answers it. The work runs on the
model's thread (``Context.on_model``); the app does the HTTP, the limits' statuses and the metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

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

    takes_responses: ClassVar[bool] = False  # a repository of responses to search (``attach_responses``)

    def attach_responses(self, data: str | Path) -> None:
        """The training responses of dataset ``data`` become what this model searches."""
        raise RnnkitError(f"{self.name} is a {self.kind} model: it searches no responses")

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
    """A request body: a field it does not know (a typo such as ``temprature``) is refused, not
    ignored; each field takes its own JSON type only (``"top": "3"`` and ``"top": true`` are
    refused, not read as 3 and 1; a whole number where a number is asked is one)."""

    model_config = ConfigDict(extra="forbid", strict=True)


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
    if name not in served or not data or not served[name].takes_responses:
        raise RnnkitError(f"--responses {spec!r}: give NAME=DATA for a ranker being served")
    served[name].attach_responses(data)
