"""The latency of one chat answer against a whole repository of responses, for each ranker given.

    python benchmarks/chat_latency.py DATA MODEL [MODEL ...] [--queries 200] [--engine auto] [--json]

DATA is a ranking dataset (``rnnkit rank build --chitchat``): its training responses are the
repository, its test contexts the questions. For each model, one after the other in this process:
the first answer (which encodes the repository and caches it beside the model, or reads that cache)
is timed alone, then ``--queries`` answers one at a time, as ``rnnkit rank chat`` gives them
(``rnnkit.rank.chat.answer``: the ranker's ``rank_repository``, a reranker's second stage
included, and the rule that leaves out answers repeating the conversation). Reports p50, p99 and the mean in milliseconds, and checks the bar: p50 at most 50 ms.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import rnnkit
from rnnkit.rank.chat import answer, turns_of
from rnnkit.rank.data import read_eval, training_responses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    repository = training_responses(args.data)
    contexts = [turns_of(c) for c in read_eval(args.data, "test")[0][:args.queries]]
    rows = []
    for path in args.models:
        ranker = rnnkit.load(path, engine=args.engine)
        started = time.perf_counter()
        answer(ranker, repository, contexts[0])
        first = time.perf_counter() - started
        times = []
        for context in contexts:
            started = time.perf_counter()
            answer(ranker, repository, context)
            times.append(time.perf_counter() - started)
        ms = np.array(times) * 1000
        rows.append({"model": path, "kind": ranker.config.model, "repository": len(repository),
                     "first_answer_s": round(first, 2), "queries": len(ms), "p50_ms": round(float(np.median(ms)), 1),
                     "p99_ms": round(float(np.percentile(ms, 99)), 1), "mean_ms": round(float(ms.mean()), 1)})
        if not args.json:
            r = rows[-1]
            print(f"{path} ({r['kind']}): first answer {r['first_answer_s']} s; {r['queries']} answers against "
                  f"{r['repository']:,} responses: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, mean {r['mean_ms']} ms")
    checks = {f"{r['model']}: p50 at most 50 ms": r["p50_ms"] <= 50 for r in rows}
    if args.json:
        print(json.dumps({"models": rows, "checks": checks}, indent=2))
    else:
        for check, passed in checks.items():
            print(f"  {check}: {'yes' if passed else 'NO'}")


if __name__ == "__main__":
    main()
