"""The neural cache and dynamic evaluation on the 10-minute models: test perplexity without and with each.

    python benchmarks/lm_memory.py --work /tmp/lm-memory            # trains what is missing (2 × 10 min)
    python benchmarks/lm_memory.py --work /tmp/lm-memory --minutes 2

In ``--work`` it prepares kjv-lm (words, its own splits) and tinyshakespeare (characters: the text's
last tenth in two, validation then test, 5% each), trains
``rnnkit train CORPUS --out M --max-time T`` on each with no other option (a model already there is
kept), fits the cache (``rnnkit fit-cache``) and dynamic evaluation (``rnnkit fit-dynamic``) on the
validation split, and evaluates on the test split: the static model, with the cache, with dynamic
evaluation, with both. Each row's ratio is to the static figure of the same model.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"


def prepare(work: Path) -> dict[str, Path]:
    import rnnkit

    corpora = {"kjv-lm": work / "kjv-lm", "tinyshakespeare (characters)": work / "chars"}
    if not (corpora["kjv-lm"] / "meta.json").exists():
        rnnkit.prepare(DATA / "kjv-lm" / "train.txt", corpora["kjv-lm"], valid_file=DATA / "kjv-lm" / "valid.txt",
                       test_file=DATA / "kjv-lm" / "test.txt", tokenizer="whitespace", lines=True, vocab_size=0,
                       unk_token="<unk>", lowercase=False, progress=False)
    if not (corpora["tinyshakespeare (characters)"] / "meta.json").exists():
        rnnkit.prepare(DATA / "tinyshakespeare.txt", corpora["tinyshakespeare (characters)"], level="char",
                       valid_fraction=0.05, test_fraction=0.05, split_tail=True, progress=False)
    return corpora


def rnnkit_cli(*args: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "rnnkit", *args, "--json"], capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"rnnkit {' '.join(args)} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="a directory for the corpora and models (kept)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each model")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if not (DATA / "kjv-lm").is_dir():
        sys.exit(f"{DATA} lacks kjv-lm and tinyshakespeare.txt")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, corpus in prepare(work).items():
        model = work / f"{corpus.name}-{args.minutes:g}min"
        if not (model / "config.json").exists():
            rnnkit_cli("train", str(corpus), "--out", str(model), "--max-time", f"{args.minutes * 60:.0f}")
        started = time.perf_counter()
        cache = rnnkit_cli("fit-cache", str(model), str(corpus))
        fit_cache_s = time.perf_counter() - started
        started = time.perf_counter()
        dynamic = rnnkit_cli("fit-dynamic", str(model), str(corpus))
        fit_dynamic_s = time.perf_counter() - started
        started = time.perf_counter()
        test = rnnkit_cli("evaluate", str(model), str(corpus), "--split", "test", "--dynamic")
        evaluate_s = time.perf_counter() - started
        static = test["without_cache"]["loss"]
        figures = [("static", static), ("cache", test["loss"]),
                   ("dynamic evaluation", test["dynamic"]["without_cache"]["loss"]),
                   ("dynamic evaluation + cache", test["dynamic"]["loss"])]
        for label, loss in figures:
            rows.append({"corpus": name, "model": model.name, "row": label, "loss": loss, "perplexity": math.exp(loss),
                         "ratio": math.exp(loss - static), "tokens": test["tokens"]})
        rows.append({"corpus": name, "model": model.name, "row": "settings", "cache": cache, "dynamic": dynamic,
                     "seconds": {"fit-cache": fit_cache_s, "fit-dynamic": fit_dynamic_s, "evaluate": evaluate_s}})
        print(f"\n{name}: {model} (test split, {test['tokens']:,} tokens; cache window {cache['window']}, "
              f"λ {cache['lam']:g}, θ {cache['theta']:.3g}; dynamic lr {dynamic['lr']:g}, decay {dynamic['decay']:g}; "
              f"fit-cache {fit_cache_s:.0f} s, fit-dynamic {fit_dynamic_s:.0f} s, evaluate {evaluate_s:.0f} s)")
        unit = "nats/char" if "characters" in name else "perplexity"
        for label, loss in figures:
            shown = f"{loss:.4f}" if unit == "nats/char" else f"{math.exp(loss):.2f}"
            print(f"  {label:<28} {unit} {shown:>8}   {100 * (1 - math.exp(loss - static)):5.1f}% below static "
                  f"(perplexity {math.exp(loss):.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
