"""``rnnkit serve``: trained models behind HTTP (FastAPI), with dynamic batching, limits,
Prometheus metrics and a page to try them. Needs the ``serve`` extra."""

from rnnkit.serve.app import create_app
from rnnkit.serve.limits import Limits
from rnnkit.serve.models import open_served

__all__ = ["Limits", "create_app", "open_served"]
