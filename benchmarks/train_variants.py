"""``rnnkit train`` with one option at each of several values, side by side on one corpus.

    python benchmarks/train_variants.py PREPARED --vary softmax full adaptive --max-time 300
    python benchmarks/train_variants.py PREPARED --vary precision fp32 bf16 --max-steps 300

Each value runs in its own process, one after the other, with the same other options (the
budget among them): tokens/s, steps, epochs and the validation perplexity at the end, then each
value's ratios to the first's. With ``--max-steps`` the runs see the same data from the same
initial weights, so perplexities compare per step; with ``--max-time``, per second.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def compare(prepared: str, option: str, values: list[str], options: list[str]) -> dict[str, dict]:
    """Train once per value of ``--option``; print a row as each ends and the ratios; the summaries."""
    print(f"{'--' + option:<14} {'tokens/s':>9} {'steps':>6} {'epochs':>7} {'valid perplexity':>17}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for value in values:
            run = subprocess.run([sys.executable, "-m", "rnnkit", "train", prepared, "--out", str(Path(tmp) / value),
                                  f"--{option}", value, "--json", *options], capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"rnnkit train --{option} {value} failed:\n{run.stderr[-2000:]}")
            summary = results[value] = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{value:<14} {summary['tokens_per_second']:>9,.0f} {summary['steps']:>6} {summary['epochs']:>7.2f} "
                  f"{summary['valid_perplexity']:>17.2f}", flush=True)
    first = results[values[0]]
    for value in values[1:]:
        speed = results[value]["tokens_per_second"] / first["tokens_per_second"]
        quality = results[value]["valid_perplexity"] / first["valid_perplexity"]
        print(f"{value} / {values[0]}: {speed:.2f}× the tokens/s, {quality:.3f}× the perplexity")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared")
    parser.add_argument("--vary", nargs="+", required=True, metavar=("OPTION", "VALUE"),
                        help="an option of rnnkit train (without --) and its values")
    args, options = parser.parse_known_args()
    if len(args.vary) < 3:
        parser.error("--vary takes an option and at least two values")
    compare(args.prepared, args.vary[0], args.vary[1:], options)


if __name__ == "__main__":
    main()
