"""Response ranking on Shakespeare's plays: baselines, the dual encoder and its variants, side by side.

    python benchmarks/rank_shakespeare.py [--seconds 600] [--models dual-encoder combined ...] [--json]

Builds the ranking dataset from the plays (``rnnkit rank build --shakespeare``: train, valid and
test split by play), then, one after the other in this process, fits the random, TF-IDF and BM25
baselines and trains each learned ranker for the same wall time, and evaluates every model on the
held-out test plays: Recall@1, 2, 5 in 1-of-10 with 95% bootstrap intervals, training time and
training pairs per second. It checks the bars: the plain dual encoder beats TF-IDF on R@1 by more
than both intervals' half-widths, and the best variant beats the plain dual encoder the same way.
``compare`` runs the same table on any dialogues (``rank_chitchat.py``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rnnkit.rank import build_dataset, evaluate_ranker, train_ranker
from rnnkit.rank.dialogue import shakespeare_plays
from rnnkit.rank.config import PRESETS

BASELINES = ["random", "tfidf", "bm25"]
VARIANTS = [name for name in PRESETS if name not in BASELINES]


def half_width(report: dict, k: str = "R@1") -> float:
    low, high = report["intervals"][k]
    return (high - low) / 2


def beats(a: dict, b: dict, k: str = "R@1") -> bool:
    """a's R@k above b's by more than both intervals' half-widths."""
    return a[k] - b[k] > half_width(a, k) + half_width(b, k)


def report(result: dict, checks: dict[str, bool], as_json: bool, header: str) -> None:
    """The table's result as JSON, or its header line and each check's verdict."""
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(header)
    for check, passed in checks.items():
        print(f"  {check}: {'yes' if passed else 'NO'}")


def arguments(description: str, models: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=600, help="training time of each learned ranker")
    parser.add_argument("--models", nargs="+", default=models, choices=VARIANTS)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--keep", metavar="DIR", help="keep the dataset and models here (default: a scratch directory)")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def compare(dialogues: list, split_by: str, args: argparse.Namespace) -> tuple[list[dict], dict]:
    """Every baseline and ``args.models``, one after the other, on a dataset built from
    ``dialogues``: their rows (printed as they come unless --json) and the dataset's meta."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.keep or scratch)
        data = tmp / "data"
        meta = build_dataset(dialogues, data, split_by=split_by)
        for name in [*BASELINES, *args.models]:
            started = time.perf_counter()
            summary = train_ranker(data, tmp / name, model=name, engine=args.engine, max_time=args.seconds,
                                   epochs=1000, log=lambda _: None)
            seconds = time.perf_counter() - started
            report = evaluate_ranker(tmp / name, data, split="test", engine=args.engine)
            recalls = {k: report[k] for k in ("R@1", "R@2", "R@5", "R@1_of_2", "intervals")}
            rows.append({"model": name, **recalls,
                         "train_seconds": round(seconds, 1), "epochs": summary.get("epochs"),
                         "pairs_per_second": round(summary.get("pairs_per_second", 0.0))})
            if not args.json:
                r = rows[-1]
                low, high = r["intervals"]["R@1"]
                print(f"{name:<14} R@1 {r['R@1']:.3f} [{low:.3f}, {high:.3f}]  R@2 {r['R@2']:.3f}  R@5 {r['R@5']:.3f}  "
                      f"{r['train_seconds']:7.1f} s  {r['epochs'] or 0:5.2f} epochs  "
                      f"{r['pairs_per_second']:6,} pairs/s", flush=True)
    return rows, meta


def main() -> None:
    args = arguments(__doc__.splitlines()[0], VARIANTS)
    rows, meta = compare(shakespeare_plays(), "source", args)
    by_name = {r["model"]: r for r in rows}
    checks = {}
    if "dual-encoder" in by_name:
        checks["dual-encoder beats tfidf"] = beats(by_name["dual-encoder"], by_name["tfidf"])
        best = max((r for r in rows if r["model"] in VARIANTS and r["model"] != "dual-encoder"),
                   key=lambda r: r["R@1"], default=None)
        if best is not None:
            checks[f"{best['model']} beats dual-encoder"] = beats(best, by_name["dual-encoder"])
    result = {"test_examples": meta["splits"]["test"]["examples"], "test_plays": meta["splits"]["test"]["units"],
              "seconds_per_model": args.seconds, "models": rows, "checks": checks}
    report(result, {f"{c} (by more than both half-widths)": v for c, v in checks.items()}, args.json,
           f"test: {result['test_examples']:,} examples from {', '.join(result['test_plays'])}")


if __name__ == "__main__":
    main()
