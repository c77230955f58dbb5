"""Folio → modern spelling: encoder–decoders side by side, each trained for the same time.

    python benchmarks/seq2seq_folio.py [--seconds 900] [--rows none+feed general general+feed ...]
                                       [--split test|valid] [--limit N] [--keep DIR] [--json]

Fetches the parallel corpus (``rnnkit data get shakespeare-folio``), then, one after the other in
this process, trains one encoder–decoder per row for the same wall time (the default settings of
``rnnkit seq2seq train`` but for the row's own), and evaluates each on the held-out plays (greedy
decoding): character error rate, word accuracy and BLEU beside the copy and lexicon baselines;
the same with the lexicon's confident spellings in place (``+lex``); the outputs caught in a loop;
the same unconstrained (no loop guard, no attention window: the model alone); and the CER by
source length in 20-character buckets.

Rows: ``none`` (the fixed-vector model whose decoder only starts from the source), ``none+feed``
(Cho et al.'s: the source vector at every step), ``dot``/``general``/``additive`` attention, and
each with ``+feed`` (input feeding); any of them with other training options after a colon
(``general:hidden=128,dropout=0.1``). It checks the issue's bars on the best row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rnnkit.data.corpora import get
from rnnkit.seq2seq import Seq2SeqTrainConfig, evaluate_seq2seq, load_seq2seq, train_seq2seq

KINDS = ["none", "dot", "general", "additive"]
ROWS: dict[str, dict[str, Any]] = {**{kind: {"attention": kind} for kind in KINDS},
                                   **{f"{kind}+feed": {"attention": kind, "input_feeding": True} for kind in KINDS}}


def growth(buckets: list[dict], least: int = 100) -> float:
    """CER of the longest bucket with at least ``least`` pairs over that of the shortest."""
    full = [b for b in buckets if b["pairs"] >= least]
    return full[-1]["cer"] / full[0]["cer"] if full and full[0]["cer"] else float("nan")


def long_over_middle(buckets: list[dict]) -> float:
    """CER of sources of 60–79 characters over the mean of the 20–39 and 40–59 buckets'."""
    cer = {b["from"]: b["cer"] for b in buckets}
    return cer[60] / ((cer[20] + cer[40]) / 2) if {20, 40, 60} <= set(cer) else float("nan")


def row_options(name: str) -> dict[str, Any]:
    """A row's training options: its kind's, then those after the colon (typed as the defaults are)."""
    kind, _, extra = name.partition(":")
    if kind not in ROWS:
        raise SystemExit(f"unknown row {kind!r}; use {', '.join(ROWS)}")
    defaults, options = Seq2SeqTrainConfig(), dict(ROWS[kind])
    for item in filter(None, extra.split(",")):
        key, _, value = item.partition("=")
        default = getattr(defaults, key)
        options[key] = value.lower() in ("1", "true", "on") if isinstance(default, bool) else \
            type(default)(value) if default is not None else float(value) if "." in value else int(value)
    return options


def train_and_evaluate(name: str, data: Path, out: Path, seconds: float, limit: int | None,
                       free: bool = True, split: str = "test") -> dict[str, Any]:
    started = time.perf_counter()
    summary = train_seq2seq(data, out, **row_options(name), max_time=seconds, epochs=1000, log=lambda _: None,
                            progress=False)
    trained = time.perf_counter() - started
    model = load_seq2seq(out)
    report = evaluate_seq2seq(model, data, split, limit=limit)
    alone = evaluate_seq2seq(model, data, split, limit=limit, guard=False, window=None) if free else report
    return {"row": name, **report["model"], "lexicon_joined": report["model+lexicon"], "loops": report["loops"],
            "unconstrained": {**alone["model"], "loops": alone["loops"], "by_length": alone["by_length"]["model"]},
            "train_seconds": round(trained, 1), "epochs": summary["epochs"],
            "tokens_per_second": round(summary["tokens_per_second"]), "by_length": report["by_length"]["model"],
            "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=900, help="training time of each model")
    parser.add_argument("--rows", nargs="+", default=["none+feed", "general", "general+feed"],
                        help=f"{', '.join(ROWS)}, each with options after a colon (general:hidden=128)")
    parser.add_argument("--no-free", dest="free", action="store_false",
                        help="skip the unconstrained evaluation (its columns then repeat the constrained one)")
    parser.add_argument("--limit", type=int, help="pairs scored, drawn at random (default: all)")
    parser.add_argument("--split", default="test", choices=["test", "valid"],
                        help="where each model is scored (valid: to choose a setting; the figures to report are "
                             "test's)")
    parser.add_argument("--keep", type=Path, help="keep the trained models here (default: thrown away)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = get("shakespeare-folio")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.rows:
            rows.append(train_and_evaluate(name, data, (args.keep or Path(tmp)) / name, args.seconds, args.limit,
                                           args.free, args.split))
            if not args.json:
                r = rows[-1]
                print(f"{name:<20} CER {r['cer']:.4f}  word acc {r['word_accuracy']:.4f}  BLEU {r['bleu']:5.1f}  "
                      f"+lex CER {r['lexicon_joined']['cer']:.4f} acc {r['lexicon_joined']['word_accuracy']:.4f} "
                      f"BLEU {r['lexicon_joined']['bleu']:5.1f}  loops {r['loops']}  |  unconstrained CER "
                      f"{r['unconstrained']['cer']:.4f} acc {r['unconstrained']['word_accuracy']:.4f} loops "
                      f"{r['unconstrained']['loops']}  |  {r['epochs']:5.2f} epochs  "
                      f"{r['tokens_per_second']:,} tokens/s",
                      flush=True)
    report = rows[-1].pop("report")
    for r in rows:
        r.pop("report", None)
    baselines = report["baselines"]
    best = min(rows, key=lambda r: r["cer"])
    lexicon = baselines["lexicon"]
    checks = {f"{best['row']}: CER <= 0.050": best["cer"] <= 0.050,
              f"{best['row']}: word accuracy >= 0.85": best["word_accuracy"] >= 0.85,
              f"{best['row']}: BLEU >= 72": best["bleu"] >= 72,
              f"{best['row']}: CER at least 20% below the lexicon's": best["cer"] <= 0.8 * lexicon["cer"],
              f"{best['row']}: CER of 60-79 at most 1.25x the 20-59 mean": long_over_middle(best["by_length"]) <= 1.25,
              f"{best['row']}: no output in a loop": best["loops"] == 0}
    by_name = {r["row"]: r for r in rows}
    if "none" in by_name and best["row"] != "none":
        checks[f"none's CER grows with length more than {best['row']}'s"] = \
            growth(by_name["none"]["by_length"]) > growth(best["by_length"])
    result = {"pairs": report["pairs"], "seconds_per_model": args.seconds, "models": rows, "baselines": baselines,
              "copy_by_length": report["by_length"]["copy"], "checks": checks}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, b in baselines.items():
        print(f"{name:<20} CER {b['cer']:.4f}  word acc {b['word_accuracy']:.4f}  BLEU {b['bleu']:5.1f}")
    print(f"{args.split}: {result['pairs']:,} pairs (held-out plays). CER by source length (characters):")
    header = [f"{b['from']}-{b['to']}" for b in report["by_length"]["copy"]]
    print(f"  {'':<20}" + "".join(f"{h:>9}" for h in header))
    print(f"  {'pairs':<20}" + "".join(f"{b['pairs']:>9,}" for b in report["by_length"]["copy"]))
    free = [{"row": f"{r['row']} (free)", "by_length": r["unconstrained"]["by_length"]} for r in rows]
    for r in [*rows, *free, {"row": "copy", "by_length": report["by_length"]["copy"]}]:
        cells = {f"{b['from']}-{b['to']}": b["cer"] for b in r["by_length"]}
        print(f"  {r['row']:<20}" + "".join(f"{cells[h]:>9.4f}" if h in cells else f"{'':>9}" for h in header))
    for check, passed in checks.items():
        print(f"  {check}: {'yes' if passed else 'NO'}")


if __name__ == "__main__":
    main()
