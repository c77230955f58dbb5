"""Where a language model's training step spends its time: torch.profiler over real steps.

    python benchmarks/profile_lm.py PREPARED [--steps 40] [rnnkit train options, e.g. --hidden 200]

Builds the model and batches exactly as ``rnnkit train`` does (the recommended recipe, then the
options given), takes a few warm-up steps, profiles ``--steps`` more on the CPU, and prints the
operators by their own time, then a summary: the output layer's share (the vocabulary-sized
products and the softmax) against the recurrence's and the rest.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from steps import recipe_task
from torch.profiler import ProfilerActivity, profile

RECURRENCE = ("lstm", "gru", "rnn_tanh", "mkldnn_rnn", "_thnn_fused", "sigmoid", "tanh")
OUTPUT = ("addmm", "mm", "exp", "amax", "max", "sum", "div", "gather", "log", "sub", "index_put", "mul")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared")
    parser.add_argument("--steps", type=int, default=40)
    args, rest = parser.parse_known_args()
    # The other options are `rnnkit train`'s, read by its own parser.
    task, cfg, batches, carry = recipe_task(args.prepared, rest)
    for _ in range(5):
        _, _, carry = task.train_step(next(batches), cfg.lr, carry)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            _, _, carry = task.train_step(next(batches), cfg.lr, carry)
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=20))
    shares: dict[str, float] = defaultdict(float)
    for event in events:
        name = event.key.removeprefix("aten::")
        group = ("recurrence" if any(r in name for r in RECURRENCE) else
                 "output layer and softmax" if name.split("_")[0] in OUTPUT or name in OUTPUT else "other")
        shares[group] += event.self_cpu_time_total
    total = sum(shares.values())
    print(f"{args.steps} steps, {total / 1e6 / args.steps * 1e3:.1f} ms of operator time a step "
          f"(torch threads: {torch.get_num_threads()})")
    for group, micros in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"  {group:<26} {micros / total:6.1%}")


if __name__ == "__main__":
    main()
