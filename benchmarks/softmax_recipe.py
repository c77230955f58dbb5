"""The recommended recipe with the full softmax and with the adaptive one, side by side on a corpus.

    python benchmarks/softmax_recipe.py PREPARED [--seconds 300] [train options ...]

Runs ``rnnkit train PREPARED --max-time S`` twice, one after the other: the recommended recipe
as it is (full softmax, tied embedding), then with ``--softmax adaptive`` (which cannot tie).
Prints tokens/s, epochs and validation perplexity at the end of each: whether the adaptive
softmax's speed buys more than tying gives on this corpus.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared")
    parser.add_argument("--seconds", type=float, default=300.0)
    args, options = parser.parse_known_args()
    print(f"{'softmax':<9} {'tokens/s':>9} {'epochs':>7} {'valid perplexity':>17}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for softmax in ("full", "adaptive"):
            run = subprocess.run([sys.executable, "-m", "rnnkit", "train", args.prepared, "--out", str(Path(tmp) / softmax),
                                  "--softmax", softmax, "--max-time", str(args.seconds), "--json", *options],
                                 capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"rnnkit train --softmax {softmax} failed:\n{run.stderr[-2000:]}")
            summary = results[softmax] = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{softmax:<9} {summary['tokens_per_second']:>9,.0f} {summary['epochs']:>7.2f} "
                  f"{summary['valid_perplexity']:>17.2f}", flush=True)
    speed = results["adaptive"]["tokens_per_second"] / results["full"]["tokens_per_second"]
    quality = results["adaptive"]["valid_perplexity"] / results["full"]["valid_perplexity"]
    print(f"adaptive / full: {speed:.2f}× the tokens/s, {quality:.2f}× the perplexity")


if __name__ == "__main__":
    main()
