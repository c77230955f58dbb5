"""Benchmark: the numpy engine against the torch engine (CPU), one minute each, on kjv.txt.

    python benchmarks/engines_kjv.py [--cell rnn|gru|lstm] [--seconds 60] [--batch-size 32] [--optimizer adam]
                                     [--lr 0.003] [--json]

The seed's model — vanilla RNN, H = 100, one-hot input, vocabulary 8000, float32 — trained in
sentence mode with the same settings for the same wall-clock time on each engine, one after the
other in one process. ``--cell gru|lstm`` compares the gated cells instead (H = 100, embedding
100, tied). Reports training tokens/s and the validation perplexity each reached.
(Plain SGD at a rate this batch size would need diverges without clipping; Adam does not.)
With a GPU present, the torch engine is also run on CUDA at a batch size that fills it.
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
    parser.add_argument("--cell", default="rnn", choices=["rnn", "gru", "lstm"])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--optimizer", default="adam", choices=["sgd", "rmsprop", "adam"])
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--gpu-batch-size", type=int, default=1024)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kjv = DATA / "kjv.txt"
    if not kjv.exists():
        sys.exit(f"{kjv} not found: this benchmark needs ../shared/data")
    import torch

    runs = [("numpy", "cpu", args.batch_size), ("torch", "cpu", args.batch_size)]
    if torch.cuda.is_available():
        runs.append(("torch", "cuda", args.gpu_batch_size))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = rnnkit.prepare(kjv, Path(tmp) / "kjv", vocab_size=8000)
        for engine, device, batch_size in runs:
            summary = train(corpus, Path(tmp) / f"{engine}-{device}", recipe="seed", engine=engine, device=device,
                            cell=args.cell, hidden=100,
                            batch_size=batch_size, lr=args.lr, optimizer=args.optimizer,
                            dtype="float32", epochs=1000, max_time=args.seconds, evaluate_every=1000,
                            log=lambda _: None, progress=False)
            results.append({"engine": engine, "device": device, "batch_size": batch_size,
                            "tokens_per_second": round(summary["tokens_per_second"]),
                            "valid_perplexity": round(summary["valid_perplexity"], 2),
                            "tokens": summary["tokens"], "seconds": summary["seconds"]})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"kjv.txt, vocabulary 8000, {args.cell} H=100, float32, sentence mode, {args.optimizer} lr {args.lr}, "
          f"{args.seconds:.0f} s of training each")
    for r in results:
        print(f"  {r['engine']:>5} on {r['device']:<4} batch {r['batch_size']:>4}: {r['tokens_per_second']:>10,} tokens/s, "
              f"validation perplexity {r['valid_perplexity']:.1f} after {r['tokens']:,} tokens")


if __name__ == "__main__":
    main()
