"""Milliseconds a training step of a language model, as ``rnnkit train`` would take it.

    python benchmarks/step_time.py PREPARED [--steps 150] [rnnkit train options, e.g. --hidden 200]

Builds the model and batches exactly as ``rnnkit train`` does (the recommended recipe, then the
options given), takes 10 warm-up steps, then times ``--steps`` more and prints the mean step and
the tokens a second. Run before and after a change, alternately, to compare the two.
"""

from __future__ import annotations

import argparse
import time

from steps import recipe_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared")
    parser.add_argument("--steps", type=int, default=150)
    args, rest = parser.parse_known_args()
    task, cfg, batches, carry = recipe_task(args.prepared, rest)  # the other options are rnnkit train's
    for _ in range(10):
        _, _, carry = task.train_step(next(batches), cfg.lr, carry)
    tokens, started = 0, time.perf_counter()
    for _ in range(args.steps):
        _, n, carry = task.train_step(next(batches), cfg.lr, carry)
        tokens += n
    seconds = time.perf_counter() - started
    print(f"{seconds / args.steps * 1e3:.2f} ms a step, {tokens / seconds:,.0f} tokens/s ({args.steps} steps)")


if __name__ == "__main__":
    main()
