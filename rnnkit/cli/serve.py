"""``rnnkit serve``: model directories behind HTTP."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnkit.cli.common import add_cache_option, add_engine_option, add_verb
from rnnkit.errors import RnnkitError
from rnnkit.options import add_flags, given
from rnnkit.serve.options import Connections, Limits


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from rnnkit.serve import create_app, open_served
        from rnnkit.serve.connections import uvicorn_settings
        from rnnkit.serve.models import attach_responses
    except ImportError as e:
        raise RnnkitError(f"rnnkit serve needs the serve extra ({e.name} is missing): "
                          "pip install 'rnnkit[serve]'") from None
    served = {}
    for spec in args.models:
        model = open_served(spec, engine=args.engine, device=args.device)
        use_cache = getattr(model.model, "use_cache", None)  # a language model's neural cache
        if use_cache is not None:
            use_cache(args.cache)
        if model.name in served:
            raise RnnkitError(f"two models named {model.name!r}; name them: NAME=PATH")
        served[model.name] = model
    for spec in args.responses:
        attach_responses(served, spec)
    limits, connections = Limits(**given(args, Limits)), Connections(**given(args, Connections))
    app = create_app(served, limits=limits, batch_window_ms=connections.batch_window_ms, docs=args.docs)
    where = "loopback only" if args.host in ("127.0.0.1", "localhost", "::1") else "REACHABLE FROM OTHER MACHINES"
    docs = ", the API docs at /docs" if args.docs else ""
    print(f"rnnkit serve: {', '.join(f'{s.name} ({s.kind})' for s in served.values())} on "
          f"http://{args.host}:{args.port} ({where}); the page is at /{docs}", file=sys.stderr)
    # On SIGTERM or Ctrl-C uvicorn stops accepting, then waits for the requests in flight, at most
    # SHUTDOWN_GRACE_S, before it exits.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S, **uvicorn_settings(connections))
    return 0


SHUTDOWN_GRACE_S = 30


def register(verbs: Any) -> None:
    p = add_verb(verbs, "serve", cmd_serve, "serve trained models over HTTP (needs rnnkit[serve])")
    p.add_argument("models", nargs="+", metavar="MODEL", help="model directories, as PATH or NAME=PATH")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--responses", action="append", default=[], metavar="NAME=DATA",
                   help="a ranking dataset whose training responses ranker NAME searches when given no candidates")
    add_flags(p, Limits)
    add_flags(p, Connections)
    p.add_argument("--no-docs", dest="docs", action="store_false",
                   help="no /docs and /redoc pages (they are served from the package, not a CDN)")
    add_cache_option(p)
    add_engine_option(p, device=True)
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
