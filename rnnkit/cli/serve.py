"""``rnnkit serve``: model directories behind HTTP."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnkit.cli.common import add_cache_option, add_engine_option, add_verb
from rnnkit.errors import RnnkitError


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from rnnkit.serve import Limits, create_app, open_served
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
    limits = Limits(args.max_body_bytes, args.max_sentences, args.max_tokens, args.max_generate, args.max_length,
                    args.max_work, args.deadline)
    app = create_app(served, limits=limits, batch_window_ms=args.batch_window_ms, docs=args.docs)
    where = "loopback only" if args.host in ("127.0.0.1", "localhost", "::1") else "REACHABLE FROM OTHER MACHINES"
    docs = ", the API docs at /docs" if args.docs else ""
    print(f"rnnkit serve: {', '.join(f'{s.name} ({s.kind})' for s in served.values())} on "
          f"http://{args.host}:{args.port} ({where}); the page is at /{docs}", file=sys.stderr)
    # On SIGTERM or Ctrl-C uvicorn stops accepting, then waits for the requests in flight, at most
    # SHUTDOWN_GRACE_S, before it exits.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    return 0


SHUTDOWN_GRACE_S = 30


def register(verbs: Any) -> None:
    p = add_verb(verbs, "serve", cmd_serve, "serve trained models over HTTP (needs rnnkit[serve])")
    p.add_argument("models", nargs="+", metavar="MODEL", help="model directories, as PATH or NAME=PATH")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--batch-window-ms", type=float, default=5.0,
                   help="how long /score requests wait to be batched together (0: each alone; default 5)")
    p.add_argument("--responses", action="append", default=[], metavar="NAME=DATA",
                   help="a ranking dataset whose training responses ranker NAME searches when given no candidates")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20)
    p.add_argument("--max-sentences", type=int, default=256, help="sentences, candidates or sources per request")
    p.add_argument("--max-tokens", type=int, default=400, help="tokens per sentence")
    p.add_argument("--max-generate", type=int, default=64, help="texts per /generate request")
    p.add_argument("--max-length", type=int, default=200, help="tokens of a generated text")
    p.add_argument("--max-work", type=int, default=1 << 17,
                   help="tokens the model may read or write for one request: beam × source tokens for "
                        "translate, n × length for generate (default 131072)")
    p.add_argument("--deadline", type=float, default=30.0,
                   help="seconds a request may wait for its model; past them its work is dropped and it gets "
                        "503 (default 30)")
    p.add_argument("--no-docs", dest="docs", action="store_false",
                   help="no /docs and /redoc pages (they are served from the package, not a CDN)")
    add_cache_option(p)
    add_engine_option(p, device=True)
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
