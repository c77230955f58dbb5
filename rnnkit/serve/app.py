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
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from rnnkit._version import __version__
from rnnkit.errors import RnnkitError
from rnnkit.serve.batching import Batcher
from rnnkit.serve.limits import LimitExceeded, Limits, counted_body
from rnnkit.serve.metrics import Metrics
from rnnkit.serve.models import Context, Served

log = logging.getLogger("rnnkit.serve")


def model_context(name: str, limits: Limits, metrics: Metrics, batch_window_ms: float, max_batch: int) -> Context:
    """A model's own thread (one call at a time: a model is not thread-safe), so that one model's
    long request never holds another's."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rnnkit-{name}")

    async def on_model(function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    def batcher(function: Callable[[list[Any]], list[Any]]) -> Batcher:
        return Batcher(function, executor, window_ms=batch_window_ms, max_items=max_batch,
                       on_batch=metrics.batch_size.observe)

    return Context(limits, on_model, batcher)


def create_app(models: dict[str, Served], *, limits: Limits = Limits(), batch_window_ms: float = 5.0,
               max_batch: int = 256, docs: bool = True) -> FastAPI:
    """The app for ``models`` (name → Served). ``batch_window_ms`` 0 runs each request alone.
    ``docs``: the /docs (Swagger UI) and /redoc pages, their scripts served from the package
    (fastapi-offline), so they work with no internet."""
    about = {"title": "rnnkit", "version": __version__, "description": "Recurrent neural network models over text."}
    app = FastAPIOffline(**about) if docs else FastAPI(**about, docs_url=None, redoc_url=None)
    metrics = Metrics()
    contexts = {name: model_context(name, limits, metrics, batch_window_ms, max_batch) for name in models}
    for name, served in models.items():
        served.start(contexts[name])
    # Each endpoint of the kinds served, with the request body its kinds agree on.
    bodies: dict[str, type[BaseModel]] = {}
    for served in models.values():
        for endpoint, body in type(served).endpoints.items():
            if bodies.setdefault(endpoint, body) is not body:
                raise RnnkitError(f"two kinds served answer /{endpoint} with different requests; serve them apart")

    @app.exception_handler(RnnkitError)
    async def user_error(request: Request, e: RnnkitError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, 422)

    @app.exception_handler(LimitExceeded)
    async def over_limit(request: Request, e: LimitExceeded) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, e.status)

    @app.exception_handler(_Refused)
    async def refused(request: Request, e: _Refused) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, e.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        if e.status_code == 400:  # FastAPI's answer to a body it cannot parse: bytes not UTF-8, JSON nested too deep
            return JSONResponse({"detail": "the body is not a JSON document in UTF-8 (or it nests too deep)"}, 422)
        return JSONResponse({"detail": e.detail}, e.status_code, headers=getattr(e, "headers", None))

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

    @app.get("/v1/models/{name}")
    async def one_model(name: str) -> dict[str, Any]:
        """What /v1/models says of it, and its card (its directory's README.md), if it has one."""
        served = models.get(name)
        if served is None:
            raise _NotFound(f"no model named {name!r}; GET /v1/models lists them")
        return {**served.describe(), "card": await asyncio.to_thread(served.card)}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    def add_endpoint(endpoint: str, body: type[BaseModel]) -> None:
        async def answer(name: str, request: BaseModel) -> Response:
            served = models.get(name)
            if served is None:
                raise _NotFound(f"no model named {name!r}; GET /v1/models lists them")
            if endpoint not in type(served).endpoints:
                kinds = sorted({s.kind for s in models.values() if endpoint in type(s).endpoints})
                raise _Refused(f"{name} is a {served.kind} model; this endpoint is for {' and '.join(kinds)} models",
                               400)
            results = await getattr(served, endpoint)(request, contexts[name].for_request())
            # Written to JSON on a worker thread: a large answer would hold the event loop.
            return await asyncio.to_thread(JSONResponse, {"results": results})

        # FastAPI reads the body's type from the signature: this endpoint's.
        answer.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
            inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=body)])
        app.add_api_route(f"/v1/models/{{name}}/{endpoint}", answer, methods=["POST"], name=endpoint)

    for endpoint, body in bodies.items():
        add_endpoint(endpoint, body)

    app.state.models, app.state.metrics = models, metrics
    def endpoint_of(path: str) -> str:
        """The metrics' label of a path: its endpoint, or "other" (no label per made-up path)."""
        name = path.rsplit("/", 1)[-1] or "page"
        return name if name in _PAGES or name in bodies or name in models else "other"

    app.add_middleware(Guard, limit=limits.max_body_bytes, metrics=metrics, endpoint_of=endpoint_of)
    return app


class Guard:
    """ASGI middleware around the whole app: each request's body counted against the limit as it
    streams in (``counted_body``), its count, latency and status in the metrics, and a bug of ours
    answered as a JSON 500 with an id that the log records with its traceback. (Plain ASGI, not
    FastAPI's ``@app.middleware``: that one runs the app in a task group, which wraps an error
    raised while the body is read into an ExceptionGroup, and the 413 would be lost.)"""

    def __init__(self, app: Any, limit: int, metrics: Metrics, endpoint_of: Callable[[str], str]) -> None:
        self.app, self.limit, self.metrics, self.endpoint_of = app, limit, metrics, endpoint_of

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        try:
            await self.app(scope, counted_body(receive, self.limit, declared), sending)
        except Exception:  # our bug, not the client's
            request_id = uuid.uuid4().hex[:12]
            log.exception("request %s to %s failed", request_id, scope.get("path"))
            status[0] = 500
            await JSONResponse({"detail": f"internal error (request {request_id}): the server's log has the "
                                          "details", "request_id": request_id}, 500)(scope, receive, send)
        finally:
            self.metrics.observe(self.endpoint_of(scope.get("path", "")), status[0], time.perf_counter() - started)


_PAGES = {"page", "health", "models", "metrics", "docs", "redoc", "openapi.json"}


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
