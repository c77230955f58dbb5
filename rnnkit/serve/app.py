"""The HTTP application: one FastAPI app serving any number of models, each under its name.

    GET  /                              the page to try the models
    GET  /health                        {"status": "ok"}, answered even while a batch runs
    GET  /v1/models                     names, kinds, vocabulary sizes, engine, device
    POST /v1/models/{name}/score        language models (dynamically batched)
    POST /v1/models/{name}/generate     language models
    POST /v1/models/{name}/rerank       language models
    POST /v1/models/{name}/rank         rankers
    POST /v1/models/{name}/translate    seq2seq models
    GET  /metrics                       Prometheus text format

A model's work runs on one thread of its own, off the event loop; a user's mistake is a 4xx with
``{"detail": "..."}`` in one sentence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from rnnkit._version import __version__
from rnnkit.errors import RnnkitError
from rnnkit.serve.batching import Batcher
from rnnkit.serve.limits import LimitExceeded, Limits
from rnnkit.serve.metrics import Metrics
from rnnkit.serve.models import Served


class ScoreRequest(BaseModel):
    sentences: list[str] = Field(min_length=1)
    per_token: bool = False


class GenerateRequest(BaseModel):
    n: int = Field(1, ge=1)
    seed: int | None = None
    temperature: float = Field(1.0, gt=0)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    prime: str | None = None
    min_length: int = Field(7, ge=0)
    max_length: int | None = Field(None, ge=1)  # default: the server's --max-length, at most 100


class RerankRequest(BaseModel):
    groups: list[list[str]] = Field(min_length=1)
    length_norm: bool = False


class RankRequest(BaseModel):
    context: str = Field(min_length=1)
    candidates: list[str] | None = None
    top: int = Field(10, ge=1)


class TranslateRequest(BaseModel):
    sources: list[str] = Field(min_length=1)
    beam: int = Field(1, ge=1, le=16)
    attention: bool = False


def create_app(models: dict[str, Served], *, limits: Limits = Limits(), batch_window_ms: float = 5.0,
               max_batch: int = 256) -> FastAPI:
    """The app for ``models`` (name → Served). ``batch_window_ms`` 0 runs each request alone."""
    app = FastAPI(title="rnnkit", version=__version__, description="Recurrent neural network models over text.")
    metrics = Metrics()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-model")  # one model call at a time
    batchers = {name: Batcher(lambda items, s=s: _score_items(s, items), executor, window_ms=batch_window_ms,
                              max_items=max_batch, on_batch=metrics.batch_size.observe)
                for name, s in models.items() if s.kind == "lm"}

    async def on_model(function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    def model(name: str, kind: str) -> Served:
        served = models.get(name)
        if served is None:
            raise _NotFound(f"no model named {name!r}; GET /v1/models lists them")
        if served.kind != kind:
            raise _Refused(f"{name} is a {served.kind} model; this endpoint is for {kind} models", 400)
        return served

    def check_texts(served: Served, texts: list[str], what: str) -> None:
        limits.check_count(what, len(texts))
        limits.check_tokens([served.token_count(t) for t in texts])

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """The body limit before anything is read, then the request's count, latency and status."""
        started = time.perf_counter()
        endpoint = request.scope.get("path", "").rsplit("/", 1)[-1] or "page"
        endpoint = endpoint if endpoint in _ENDPOINTS else "other"  # no label per made-up path
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            response: Response = JSONResponse({"detail": f"a body of {int(length):,} bytes; the limit is "
                                                         f"{limits.max_body_bytes:,} (--max-body-bytes)"}, 413)
        else:
            response = await call_next(request)
        metrics.observe(endpoint, response.status_code, time.perf_counter() - started)
        return response

    @app.exception_handler(RnnkitError)
    async def user_error(request: Request, e: RnnkitError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, 422)

    @app.exception_handler(LimitExceeded)
    async def over_limit(request: Request, e: LimitExceeded) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, e.status)

    @app.exception_handler(_Refused)
    async def refused(request: Request, e: _Refused) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where or 'body'}: {first.get('msg', 'invalid request')}",
                             "errors": _plain(e.errors())}, 422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files("rnnkit.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": len(models)}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"models": [s.describe() for s in models.values()]}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    @app.post("/v1/models/{name}/score")
    async def score(name: str, request: ScoreRequest) -> dict[str, Any]:
        served = model(name, "lm")
        check_texts(served, request.sentences, "sentences")
        items = [(s, request.per_token) for s in request.sentences]
        return {"results": await batchers[name].submit(items)}

    @app.post("/v1/models/{name}/generate")
    async def generate(name: str, request: GenerateRequest) -> dict[str, Any]:
        served = model(name, "lm")
        length = request.max_length or min(100, limits.max_length)
        limits.check_generate(request.n, length)
        options = {**request.model_dump(), "max_length": length, "length": length}  # length: a character model's
        return {"results": await on_model(lambda: served.generate(**options))}

    @app.post("/v1/models/{name}/rerank")
    async def rerank(name: str, request: RerankRequest) -> dict[str, Any]:
        served = model(name, "lm")
        check_texts(served, [c for g in request.groups for c in g], "candidates")
        return {"results": await on_model(served.rerank, request.groups, request.length_norm)}

    @app.post("/v1/models/{name}/rank")
    async def rank(name: str, request: RankRequest) -> dict[str, Any]:
        served = model(name, "ranker")
        check_texts(served, [request.context, *(request.candidates or [])], "texts")
        return {"results": await on_model(served.rank, request.context, request.candidates, request.top)}

    @app.post("/v1/models/{name}/translate")
    async def translate(name: str, request: TranslateRequest) -> dict[str, Any]:
        served = model(name, "seq2seq")
        check_texts(served, request.sources, "sources")
        return {"results": await on_model(served.translate, request.sources, request.beam, request.attention)}

    app.state.models, app.state.metrics = models, metrics
    return app


_ENDPOINTS = {"page", "health", "models", "metrics", "score", "generate", "rerank", "rank", "translate", "docs",
              "openapi.json"}


def _score_items(served: Served, items: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """One batch of (sentence, per_token) from many requests, scored in one call."""
    per_token = any(p for _, p in items)
    results = served.score([s for s, _ in items], per_token)
    if per_token:
        for result, (_, wanted) in zip(results, items):
            if not wanted:
                result.pop("token_probs", None)
    return results


def _plain(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors without what JSON cannot hold (exceptions in ``ctx``)."""
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]


class _Refused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _NotFound(_Refused):
    def __init__(self, message: str) -> None:
        super().__init__(message, 404)
