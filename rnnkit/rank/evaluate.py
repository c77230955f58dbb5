"""Recall@k of a ranker on a dataset's valid or test split (1-of-10, and 1-of-2), with 95% intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.rank.data import read_eval
from rnnkit.rank.metrics import recall_report
from rnnkit.rank.model import Ranker, load_ranker


def evaluate_ranker(model: Ranker | str | Path, data: str | Path, *, split: str = "test", engine: str = "auto",
                    device: str = "auto", bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``R@1``, ``R@2``, ``R@5`` (1-of-10), ``R@1_of_2``, their ``intervals`` and the ``examples``."""
    ranker = model if isinstance(model, Ranker) else load_ranker(model, engine=engine, device=device)
    contexts, candidates = read_eval(data, split)
    report = recall_report(ranker.score_rows(contexts, candidates), bootstrap=bootstrap, seed=seed)
    return {**report, "split": split, "model": ranker.config.model}
