"""Benchmark: does ``--max-time T`` bound the whole command? The wall time of each kind's
training command, from start to exit, against its T.

    python benchmarks/max_time.py [--seconds 60] [--trees BEFORE AFTER]

Each command runs as a process of its own, on the default corpora (fetched once into the cache):
``rnnkit train`` on Shakespeare prepared, ``rnnkit rank train`` on chit-chat built, and ``rnnkit
seq2seq train`` on the Folio pairs. With ``--trees``, each command runs once with each checkout's
``rnnkit`` (its root put first on ``PYTHONPATH``), one after the other, so that a change is measured
side by side. Goal (issue 59): the wall time at most T × 1.1 + 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rnnkit(tree: Path, *args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], env=env, capture_output=True, text=True,
                          check=False, cwd=tree)


def data(tree: Path, tmp: Path) -> dict[str, Path]:
    """The three kinds' data, made with ``tree``'s rnnkit (once)."""
    sys.path.insert(0, str(tree))
    from rnnkit.fsutil import cache_dir

    home = cache_dir() / "corpora"
    for name in ("shakespeare", "chitchat", "shakespeare-folio"):
        rnnkit(tree, "data", "get", name)
    made = {"lm": tmp / "shakespeare", "ranker": tmp / "chitchat", "seq2seq": home / "shakespeare-folio"}
    if not made["lm"].exists():
        rnnkit(tree, "prepare", home / "shakespeare.txt", "--out", made["lm"])
    if not made["ranker"].exists():
        rnnkit(tree, "rank", "build", "--chitchat", "--out", made["ranker"])
    return made


def timed(tree: Path, kind: str, where: Path, out: Path, seconds: float) -> dict[str, float | str]:
    verb = {"lm": ["train"], "ranker": ["rank", "train"], "seq2seq": ["seq2seq", "train"]}[kind]
    started = time.perf_counter()
    done = rnnkit(tree, *verb, where, "--out", out, "--max-time", f"{seconds:g}", "--force", "--json")
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"wall": wall, "error": done.stderr.strip().splitlines()[-1]}
    summary = json.loads(done.stdout)
    return {"wall": wall, "steps": summary["steps"], "trained": summary["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--trees", nargs="+", type=Path, default=[ROOT])
    parser.add_argument("--kinds", nargs="+", default=["lm", "ranker", "seq2seq"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="max-time-"))
    where = data(args.trees[0], tmp)
    goal = args.seconds * 1.1 + 10
    print(f"--max-time {args.seconds:g}: goal, the whole command within {goal:g} s")
    for kind in args.kinds:
        for tree in args.trees:
            r = timed(tree, kind, where[kind], tmp / f"{kind}-{tree.name}", args.seconds)
            steps = f"{r['steps']:,} steps, {r['trained']:.1f} s in the loop" if "steps" in r else r["error"]
            print(f"{kind:<8} {str(tree):<24} wall {r['wall']:6.1f} s ({r['wall'] - args.seconds:+.1f}); {steps}; "
                  f"within the goal: {'yes' if r['wall'] <= goal else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
