"""Figures on disk: matplotlib without a display, written atomically in the format the name asks for."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rnnkit.fsutil import atomic_write_bytes


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> None:
    """Write ``fig`` (PNG, SVG or PDF, from the suffix) so that ``path`` is never half-written."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
