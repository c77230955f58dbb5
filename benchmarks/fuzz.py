"""The longer fuzzing campaign: tests/test_fuzz.py (inputs, files, model directories, a ranker's
response cache, any value for the Python API's options and methods' arguments) and
tests/test_serve_fuzz.py (HTTP requests to every endpoint, /chat included) with ``--scale`` times
the inputs CI runs, fresh random ones each time, and a count of the inputs tried per test.

    python benchmarks/fuzz.py --scale 25      # 96,000 inputs; about 7 minutes on 2 cores

Hypothesis prints any failing input with a ``@reproduce_failure`` blob; the exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=60, help="times CI's inputs (default 60)")
    args = parser.parse_args()
    report = Path(tempfile.mkdtemp()) / "report.txt"  # the HTTP fuzz's count of requests
    env = {**os.environ, "RNNKIT_FUZZ_SCALE": str(args.scale), "RNNKIT_FUZZ_EXAMPLES": str(30 * args.scale),
           "RNNKIT_FUZZ_REPORT": str(report)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py",
                          "tests/test_serve_fuzz.py", "--hypothesis-show-statistics"], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=False)
    failures = run.stdout.split("= FAILURES =", 1)
    print(("= FAILURES =" + failures[1])[:30000] if len(failures) == 2 else run.stdout[-3000:], run.stderr[-2000:])
    total = 0
    for test, block in re.findall(r"tests/test_\w+.py::(\S+):\n(.*?)(?=\n\S|\Z)", run.stdout, flags=re.S):
        tried = sum(int(a) + int(b) for a, b in re.findall(r"(\d+) passing, (\d+) failing", block))
        total += tried
        print(f"{test:<62} {tried:>9,} inputs")
    for line in report.read_text(encoding="utf-8").splitlines() if report.exists() else []:
        where, _, count = line.rpartition(" ")
        total += int(count)
        print(f"{where:<62} {int(count):>9,} inputs")
    print(f"{'total':<62} {total:>9,} inputs (scale {args.scale}); pytest exit status {run.returncode}")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
