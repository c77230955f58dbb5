"""Benchmark: `rnnkit prepare` end to end against NLTK's Treebank word tokenizer alone.

    python benchmarks/prepare_speed.py [--large-mb 1000] [--json]

1. Speed on ../shared/data/kjv.txt, measured in one run: NLTK's ``NLTKWordTokenizer`` over the
   corpus's sentences (tokenizing only), then ``rnnkit.prepare`` end to end (read, split into
   sentences, tokenize, count, write) in this process with its tokenizer memo emptied first, then
   the ``rnnkit prepare`` command in a fresh process (start-up included). Goal: the command at
   least 10x NLTK's MB/s.
2. Agreement: the share of sentences of kjv.txt and of the reddit sample whose rnnkit tokens
   equal NLTK's. Goal: at least 99.9%.
3. Memory: peak resident memory of `rnnkit prepare` on kjv.txt and on a generated text of
   --large-mb megabytes (kjv.txt repeated, with a fresh made-up word every 500 words so that the
   vocabulary keeps growing as real text does), each in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def nltk_speed(path: Path) -> dict:
    from nltk.tokenize.destructive import NLTKWordTokenizer

    from rnnkit.text.readers import iter_records
    from rnnkit.text.tokenize import SentenceSplitter

    splitter = SentenceSplitter()
    sentences = [s for r in iter_records(str(path)) for s in splitter.split(r.lower())]
    nltk = NLTKWordTokenizer()
    started = time.perf_counter()
    tokens = sum(len(nltk.tokenize(s)) for s in sentences)
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    return {"seconds": seconds, "mb_per_s": size / seconds / 1e6, "tokens_per_s": tokens / seconds}


def _rates(path: Path, seconds: float, tokens: int) -> dict:
    return {"seconds": seconds, "mb_per_s": path.stat().st_size / seconds / 1e6, "tokens_per_s": tokens / seconds}


def rnnkit_speed(path: Path, repeats: int = 3) -> dict:
    """Best of ``repeats`` in-process runs, each with the tokenizers made afresh (an empty memo)."""
    import rnnkit
    from rnnkit.text.pipeline import sentence_splitter, word_tokenizer

    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            word_tokenizer.cache_clear()
            sentence_splitter.cache_clear()
            started = time.perf_counter()
            corpus = rnnkit.prepare(path, Path(tmp) / "out", force=True)
            best = min(best, time.perf_counter() - started)
    return _rates(path, best, corpus.meta["tokens"])


def command_speed(path: Path, repeats: int = 3) -> dict:
    """Best of ``repeats`` runs of the ``rnnkit prepare`` command, each a fresh process: start-up
    included. One run first, not counted, leaves what an installed rnnkit has after its first
    command: compiled bytecode (even where PYTHONDONTWRITEBYTECODE is set) and NLTK's cached tables."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        for attempt in range(repeats + 1):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rnnkit", "prepare", str(path), "--out", str(out), "--force"],
                           check=True, capture_output=True, env=env)
            if attempt:
                best = min(best, time.perf_counter() - started)
        tokens = json.loads((out / "meta.json").read_text())["tokens"]
    return _rates(path, best, tokens)


def agreement(path: Path) -> dict:
    from nltk.tokenize.destructive import NLTKWordTokenizer

    from rnnkit.text.readers import iter_records
    from rnnkit.text.tokenize import SentenceSplitter, WordTokenizer

    splitter, ours, nltk = SentenceSplitter(), WordTokenizer(), NLTKWordTokenizer()
    sentences = [s for r in iter_records(str(path)) for s in splitter.split(r.lower())]
    same = sum(ours.tokenize(s) == nltk.tokenize(s) for s in sentences)
    return {"sentences": len(sentences), "identical": same, "share": same / len(sentences)}


def peak_memory_mb(path: Path, out: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of `rnnkit prepare PATH` in a child process."""
    code = ("import resource, sys, rnnkit; rnnkit.prepare(sys.argv[1], sys.argv[2], force=True); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, str(path), str(out)], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    own = int(result.stdout.split()[-1]) / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # sentence-splitting workers too
    return max(own, children), seconds


def make_large_text(path: Path, megabytes: int, source: Path) -> None:
    lines = source.read_text(encoding="utf-8").split("\n")
    rng = random.Random(0)
    fresh = 0
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < megabytes * 1_000_000:
            out = []
            for line in lines:
                tokens = line.split(" ")
                for i in range(len(tokens)):
                    if rng.random() < 1 / 500:  # one made-up word in 500: a vocabulary that keeps growing
                        tokens[i] = f"w{fresh:x}"
                        fresh += 1
                out.append(" ".join(tokens))
            block = "\n".join(out) + "\n"
            f.write(block)
            written += len(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mb", type=int, default=1000, help="size of the generated input (0 to skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kjv, reddit = DATA / "kjv.txt", DATA / "reddit-comments-sample.csv"
    if not kjv.exists():
        sys.exit(f"{kjv} not found: this benchmark needs ../shared/data")
    results: dict = {"cpus": os.cpu_count()}
    results["nltk"] = nltk_speed(kjv)
    results["rnnkit"] = rnnkit_speed(kjv)
    results["command"] = command_speed(kjv)
    results["speedup"] = results["rnnkit"]["mb_per_s"] / results["nltk"]["mb_per_s"]
    results["command_speedup"] = results["command"]["mb_per_s"] / results["nltk"]["mb_per_s"]
    results["agreement"] = {"kjv.txt": agreement(kjv), "reddit-comments-sample.csv": agreement(reddit)}
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        kjv_mb, _ = peak_memory_mb(kjv, Path(tmp) / "kjv")
        results["memory"] = {"kjv_mb": kjv.stat().st_size / 1e6, "kjv_peak_rss_mb": kjv_mb}
        if args.large_mb:
            large = Path(tmp) / "large.txt"
            make_large_text(large, args.large_mb, kjv)
            peak, seconds = peak_memory_mb(large, Path(tmp) / "large")
            results["memory"].update({"large_mb": large.stat().st_size / 1e6, "large_peak_rss_mb": peak,
                                      "large_seconds": seconds,
                                      "large_mb_per_s": large.stat().st_size / 1e6 / seconds})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    n, r, c = results["nltk"], results["rnnkit"], results["command"]
    print(f"kjv.txt ({kjv.stat().st_size / 1e6:.1f} MB, {results['cpus']} CPUs)")
    print(f"  NLTK NLTKWordTokenizer, tokenizing only:  {n['mb_per_s']:6.2f} MB/s  {n['tokens_per_s']:>10,.0f} tokens/s")
    print(f"  rnnkit.prepare in process, end to end:   {r['mb_per_s']:6.2f} MB/s  {r['tokens_per_s']:>10,.0f} tokens/s"
          f"  ({results['speedup']:.1f}x)")
    print(f"  `rnnkit prepare` command, start-up too:  {c['mb_per_s']:6.2f} MB/s  {c['tokens_per_s']:>10,.0f} tokens/s"
          f"  ({results['command_speedup']:.1f}x; goal: 10x)")
    for name, a in results["agreement"].items():
        print(f"  tokens identical to NLTK's on {a['identical']:,} of {a['sentences']:,} sentences of {name} "
              f"({100 * a['share']:.3f}%; goal 99.9%)")
    m = results["memory"]
    print(f"  peak memory: kjv.txt ({m['kjv_mb']:.0f} MB) {m['kjv_peak_rss_mb']:.0f} MB", end="")
    if "large_mb" in m:
        print(f"; generated {m['large_mb']:.0f} MB text {m['large_peak_rss_mb']:.0f} MB "
              f"({m['large_seconds']:.0f} s, {m['large_mb_per_s']:.1f} MB/s)")
    else:
        print()


if __name__ == "__main__":
    main()
