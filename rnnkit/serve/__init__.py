"""``rnnkit serve``: trained models behind HTTP (FastAPI), with dynamic batching, limits,
Prometheus metrics and a page to try them. Needs the ``serve`` extra (but for ``options``, the
flags' declarations). Each name is imported when it is first used."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.serve.app import create_app
    from rnnkit.serve.models import open_served
    from rnnkit.serve.options import Limits

_LAZY = {"create_app": "rnnkit.serve.app", "Limits": "rnnkit.serve.options", "open_served": "rnnkit.serve.models"}
__all__ = ["Limits", "create_app", "open_served"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rnnkit.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
