"""Benchmark: the numpy engine's training throughput on kjv.txt (the seed's model, sentence mode).

    python benchmarks/numpy_train_throughput.py [--seconds 20] [--batch-sizes 1 32] [--json]

Prepares ../shared/data/kjv.txt at vocabulary 8000 (once, in a temporary directory), then trains
the seed's RNN (H = 100, bptt_truncate = 4, SGD) for a fixed wall-clock time in float32 and in
float64 at each batch size, and reports tokens per second. All runs happen in one process, one
after the other, so their ratios are meaningful on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import rnnkit
from rnnkit.lm import train

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kjv = DATA / "kjv.txt"
    if not kjv.exists():
        sys.exit(f"{kjv} not found: this benchmark needs ../shared/data")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = rnnkit.prepare(kjv, Path(tmp) / "kjv", vocab_size=8000)
        for batch_size in args.batch_sizes:
            for dtype in ("float32", "float64"):
                summary = train(corpus, Path(tmp) / f"m-{batch_size}-{dtype}", recipe="seed", engine="numpy",
                                hidden=100, bptt_truncate=4,
                                lr=0.005, batch_size=batch_size, dtype=dtype, epochs=100, max_time=args.seconds,
                                evaluate_every=100, log=lambda _: None, progress=False)
                results.append({"batch_size": batch_size, "dtype": dtype,
                                "tokens_per_second": round(summary["tokens_per_second"]),
                                "tokens": summary["tokens"], "seconds": summary["seconds"]})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"numpy engine, kjv.txt, vocabulary 8000, RNN H=100, bptt_truncate=4, SGD, {args.seconds:.0f} s each")
    for r in results:
        print(f"  batch {r['batch_size']:>3}  {r['dtype']}: {r['tokens_per_second']:>8,} tokens/s")


if __name__ == "__main__":
    main()
