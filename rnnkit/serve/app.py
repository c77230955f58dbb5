"""The HTTP application: one FastAPI app serving any number of models, each under its name.

    GET  /                              the page to try the models
    GET  /health                        {"status": "ok"}, answered even while a batch runs
    GET  /v1/models                     names, kinds, vocabulary sizes, engine, device
    POST /v1/models/{name}/{endpoint}   what the model's kind answers (``serve.models``):
         score (dynamically batched), generate, rerank    language models
         rank                                             rankers
         translate                                        seq2seq models
    GET  /metrics                       Prometheus text format

Each endpoint of every kind served is one route with its own request body (so /docs shows each);
the route hands the request to the named model, whose kind answers it. A model's work runs on one
thread of its own, off the event loop; a user's mistake is a 4xx with ``{"detail": "..."}`` in
one sentence.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from rnnkit._version import __version__
from rnnkit.errors import RnnkitError
from rnnkit.serve.batching import Batcher
from rnnkit.serve.limits import LimitExceeded, Limits
from rnnkit.serve.metrics import Metrics
from rnnkit.serve.models import Context, Served


def create_app(models: dict[str, Served], *, limits: Limits = Limits(), batch_window_ms: float = 5.0,
               max_batch: int = 256) -> FastAPI:
    """The app for ``models`` (name → Served). ``batch_window_ms`` 0 runs each request alone."""
    app = FastAPI(title="rnnkit", version=__version__, description="Recurrent neural network models over text.")
    metrics = Metrics()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-model")  # one model call at a time

    async def on_model(function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    def batcher(function: Callable[[list[Any]], list[Any]]) -> Batcher:
        return Batcher(function, executor, window_ms=batch_window_ms, max_items=max_batch,
                       on_batch=metrics.batch_size.observe)

    context = Context(limits, on_model, batcher)
    for served in models.values():
        served.start(context)
    # Each endpoint of the kinds served, with the request body its kinds agree on.
    bodies: dict[str, type[BaseModel]] = {}
    for served in models.values():
        for endpoint, body in type(served).endpoints.items():
            if bodies.setdefault(endpoint, body) is not body:
                raise RnnkitError(f"two kinds served answer /{endpoint} with different requests; serve them apart")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """The body limit before anything is read, then the request's count, latency and status."""
        started = time.perf_counter()
        endpoint = request.scope.get("path", "").rsplit("/", 1)[-1] or "page"
        endpoint = endpoint if endpoint in _PAGES or endpoint in bodies else "other"  # no label per made-up path
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

    def add_endpoint(endpoint: str, body: type[BaseModel]) -> None:
        async def answer(name: str, request: BaseModel) -> dict[str, Any]:
            served = models.get(name)
            if served is None:
                raise _NotFound(f"no model named {name!r}; GET /v1/models lists them")
            if endpoint not in type(served).endpoints:
                kinds = sorted({s.kind for s in models.values() if endpoint in type(s).endpoints})
                raise _Refused(f"{name} is a {served.kind} model; this endpoint is for {' and '.join(kinds)} models",
                               400)
            return {"results": await getattr(served, endpoint)(request, context)}

        # FastAPI reads the body's type from the signature: this endpoint's.
        answer.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
            inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=body)])
        app.add_api_route(f"/v1/models/{{name}}/{endpoint}", answer, methods=["POST"], name=endpoint)

    for endpoint, body in bodies.items():
        add_endpoint(endpoint, body)

    app.state.models, app.state.metrics = models, metrics
    return app


_PAGES = {"page", "health", "models", "metrics", "docs", "openapi.json"}


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
