"""Folio → modern spelling: the fixed-vector encoder–decoder against attention, side by side.

    python benchmarks/seq2seq_folio.py [--seconds 600] [--attention none general ...] [--limit N] [--json]

Fetches the parallel corpus (``rnnkit data get shakespeare-folio``), then, one after the other in
this process, trains an encoder–decoder for each ``--attention`` for the same wall time (the
default settings of ``rnnkit seq2seq train`` otherwise), and evaluates each on the held-out plays
(greedy decoding): character error rate, word accuracy and BLEU beside the copy and lexicon
baselines, and the CER by source length in 20-character buckets. It checks the bars: the best
attention model beats both baselines on CER and word accuracy, and the CER of ``none`` grows with
the source's length while the attention model's does not.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rnnkit.data.corpora import get
from rnnkit.seq2seq import evaluate_seq2seq, load_seq2seq, train_seq2seq

KINDS = ["none", "dot", "general", "additive"]


def growth(buckets: list[dict], least: int = 100) -> float:
    """CER of the longest bucket with at least ``least`` pairs over that of the shortest."""
    full = [b for b in buckets if b["pairs"] >= least]
    return full[-1]["cer"] / full[0]["cer"] if full and full[0]["cer"] else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="training time of each model")
    parser.add_argument("--attention", nargs="+", default=KINDS, choices=KINDS)
    parser.add_argument("--limit", type=int, help="test pairs scored (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = get("shakespeare-folio")
    rows, report = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.attention:
            started = time.perf_counter()
            summary = train_seq2seq(data, Path(tmp) / kind, attention=kind, max_time=args.seconds, epochs=1000,
                                    log=lambda _: None, progress=False)
            seconds = time.perf_counter() - started
            report = evaluate_seq2seq(load_seq2seq(Path(tmp) / kind), data, "test", limit=args.limit)
            rows.append({"attention": kind, **report["model"], "train_seconds": round(seconds, 1),
                         "epochs": summary["epochs"], "tokens_per_second": round(summary["tokens_per_second"]),
                         "by_length": report["by_length"]["model"]})
            if not args.json:
                r = rows[-1]
                print(f"{kind:<9} CER {r['cer']:.4f}  word acc {r['word_accuracy']:.4f}  BLEU {r['bleu']:5.1f}  "
                      f"{r['train_seconds']:6.0f} s  {r['epochs']:5.2f} epochs  {r['tokens_per_second']:,} tokens/s",
                      flush=True)
    baselines = report["baselines"]
    by_kind = {r["attention"]: r for r in rows}
    attention = [r for r in rows if r["attention"] != "none"]
    checks = {}
    if attention:
        best = min(attention, key=lambda r: r["cer"])
        checks[f"{best['attention']} beats copy and lexicon (CER and word accuracy)"] = all(
            best["cer"] < b["cer"] and best["word_accuracy"] > b["word_accuracy"] for b in baselines.values())
        if "none" in by_kind:
            checks[f"none's CER grows with length more than {best['attention']}'s"] = \
                growth(by_kind["none"]["by_length"]) > growth(best["by_length"])
    result = {"pairs": report["pairs"], "seconds_per_model": args.seconds, "models": rows, "baselines": baselines,
              "copy_by_length": report["by_length"]["copy"], "checks": checks}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, b in baselines.items():
        print(f"{name:<9} CER {b['cer']:.4f}  word acc {b['word_accuracy']:.4f}  BLEU {b['bleu']:5.1f}")
    print(f"test: {result['pairs']:,} pairs (held-out plays). CER by source length (characters):")
    header = [f"{b['from']}-{b['to']}" for b in report["by_length"]["copy"]]
    print(f"  {'':<9}" + "".join(f"{h:>9}" for h in header))
    print(f"  {'pairs':<9}" + "".join(f"{b['pairs']:>9,}" for b in report["by_length"]["copy"]))
    for r in [*rows, {"attention": "copy", "by_length": report["by_length"]["copy"]}]:
        cells = {f"{b['from']}-{b['to']}": b["cer"] for b in r["by_length"]}
        print(f"  {r['attention']:<9}" + "".join(f"{cells[h]:>9.4f}" if h in cells else f"{'':>9}" for h in header))
    for check, passed in checks.items():
        print(f"  {check}: {'yes' if passed else 'NO'}")


if __name__ == "__main__":
    main()
