"""Training steps with glibc's malloc as it is, and with freed memory kept for reuse (rnnkit's
default, ``rnnkit/models/memory.py``), side by side.

    python benchmarks/retain_memory.py PREPARED [--steps 40] [--rounds 2] [rnnkit train options]

Each side runs in its own process (``RNNKIT_RETAIN_MEMORY=0`` for glibc's own behaviour), the two
alternating for ``--rounds``: the same model and batches as ``rnnkit train`` with the recommended
recipe, five warm-up steps, then ``--steps`` timed ones. Prints the milliseconds and the page
faults of a step on each side, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from steps import recipe_task


def one_side(prepared: str, steps: int, options: list[str]) -> dict[str, float]:
    """This process's ms and page faults a step, after a warm-up."""
    task, cfg, batches, carry = recipe_task(prepared, options)
    for _ in range(5):
        _, _, carry = task.train_step(next(batches), cfg.lr, carry)
    faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for _ in range(steps):
        _, _, carry = task.train_step(next(batches), cfg.lr, carry)
    return {"ms": (time.perf_counter() - started) / steps * 1e3,
            "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side", action="store_true", help=argparse.SUPPRESS)  # a child: one side, as JSON
    args, options = parser.parse_known_args()
    if args.side:
        print(json.dumps(one_side(args.prepared, args.steps, options)))
        return
    sides = {"glibc as it is": "0", "freed memory kept": "1"}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, retain in sides.items():
            child = subprocess.run([sys.executable, __file__, args.prepared, "--steps", str(args.steps), "--side",
                                    *options], env={**os.environ, "RNNKIT_RETAIN_MEMORY": retain},
                                   capture_output=True, text=True, check=True)
            results[name].append(json.loads(child.stdout))
            print(f"  {name:<16} {results[name][-1]['ms']:7.1f} ms a step, "
                  f"{results[name][-1]['faults']:8,.0f} page faults a step", flush=True)
    medians = {name: statistics.median(r["ms"] for r in runs) for name, runs in results.items()}
    print(f"median: {medians['glibc as it is']:.1f} vs {medians['freed memory kept']:.1f} ms a step, "
          f"{medians['glibc as it is'] / medians['freed memory kept']:.2f}× faster with freed memory kept")


if __name__ == "__main__":
    main()
