"""Training on a corpus larger than the memory the process may use.

Generates a word corpus (sentences of Zipf-distributed words from the KJV's vocabulary, or from
a built-in list when ../shared/data is absent), then runs ``rnnkit prepare`` and one epoch of
``rnnkit train`` in subprocesses whose own memory (heap and arrays: ``RLIMIT_DATA``) is capped
well below the corpus. The corpus is read through memory maps, whose pages belong to the page
cache and do not count against the cap; the report shows both: the peak anonymous memory
(``RssAnon``, what the cap limits) and the peak resident size with the mapped corpus pages.

    python benchmarks/larger_than_memory.py                      # 4 GB of text, a 768 MB cap
    python benchmarks/larger_than_memory.py --text-mb 200   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

KJV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kjv.txt"
MB = 1 << 20


def write_corpus(path: Path, megabytes: float, seed: int = 0) -> int:
    """Sentences of 5–30 words drawn from a Zipf law over a vocabulary; returns the bytes written."""
    if KJV.exists():
        words = list(dict.fromkeys(KJV.read_text(encoding="utf-8").lower().split()))[:20000]
    else:
        words = [f"w{i}" for i in range(20000)]
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(words) + 1)
    p = 1 / ranks
    p /= p.sum()
    vocab = np.array(words, dtype=object)
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < megabytes * MB:
            lengths = rng.integers(5, 31, size=20000)
            tokens = vocab[rng.choice(len(words), size=int(lengths.sum()), p=p)]
            cuts = np.cumsum(lengths)[:-1]
            block = "\n".join(" ".join(s) for s in np.split(tokens, cuts)) + "\n"
            f.write(block)
            written += len(block.encode("utf-8"))
    return written


def capped(cap_bytes: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (cap_bytes, cap_bytes))
    return limit


def run_measured(command: list[str], cap_bytes: int) -> dict:
    """Run ``command`` under the cap; its peak RssAnon and VmRSS (sampled every 0.2 s), its
    maximum resident size (the kernel's), wall time and output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=capped(cap_bytes), env={**os.environ, "OMP_NUM_THREADS": "2"})
    peaks = {"RssAnon": 0, "VmRSS": 0, "RssFile": 0}

    def sample() -> None:
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in peaks:
                        peaks[key] = max(peaks[key], int(value.split()[0]) * 1024)
            except (OSError, ValueError):
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"returncode": process.returncode, "seconds": time.perf_counter() - started, "stdout": out,
            "stderr": err, "peak_anon_mb": peaks["RssAnon"] / MB, "peak_rss_mb": peaks["VmRSS"] / MB,
            "peak_file_mb": peaks["RssFile"] / MB, "children_maxrss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text-mb", type=float, default=4000, help="size of the generated text (MB)")
    parser.add_argument("--cap-mb", type=float, default=768, help="each subprocess's RLIMIT_DATA (MB)")
    parser.add_argument("--dir", help="where to write (default: a temporary directory, removed after)")
    args = parser.parse_args()
    cap = int(args.cap_mb * MB)
    rnnkit = [sys.executable, "-m", "rnnkit"]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        size = write_corpus(tmp / "text.txt", args.text_mb)
        print(f"generated {size / MB:,.0f} MB of text in {time.perf_counter() - t:.0f} s", flush=True)
        prepare = run_measured([*rnnkit, "prepare", str(tmp / "text.txt"), "--out", str(tmp / "prepared"), "--lines",
                                "--tokenizer", "whitespace", "--vocab-size", "256", "--valid-fraction", "0.001",
                                "--test-fraction", "0"], cap)
        if prepare["returncode"] != 0:
            sys.exit(f"prepare failed under the cap:\n{prepare['stderr'][-2000:]}")
        ids = sum(f.stat().st_size for f in (tmp / "prepared").glob("*.npy"))
        print(f"prepare: {prepare['seconds']:.0f} s, prepared arrays {ids / MB:,.0f} MB", flush=True)
        train = run_measured([*rnnkit, "train", str(tmp / "prepared"), "--out", str(tmp / "model"), "--epochs", "1",
                              "--engine", "torch", "--hidden", "16", "--dropout", "0", "--batch-size", "256",
                              "--bptt", "32", "--json"], cap)
        if train["returncode"] != 0:
            sys.exit(f"train failed under the cap:\n{train['stderr'][-2000:]}")
        summary = json.loads(train["stdout"].splitlines()[-1])
    report = {"text_mb": round(size / MB), "prepared_mb": round(ids / MB), "cap_mb": args.cap_mb,
              "prepare": {k: round(prepare[k], 1) for k in ("seconds", "peak_anon_mb", "peak_rss_mb")},
              "train": {**{k: round(train[k], 1) for k in ("seconds", "peak_anon_mb", "peak_rss_mb", "peak_file_mb")},
                        "tokens": summary["tokens"], "epochs": summary["epochs"],
                        "tokens_per_second": round(summary["tokens_per_second"]),
                        "valid_perplexity": round(summary["valid_perplexity"], 1)}}
    print(json.dumps(report, indent=1))
    print(f"\n| step | wall | peak anonymous memory (capped at {args.cap_mb:.0f} MB) | peak resident, with mapped corpus pages |")
    print("|---|---|---|---|")
    for step in ("prepare", "train"):
        r = report[step]
        print(f"| {step} | {r['seconds']:.0f} s | {r['peak_anon_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB |")
    print(f"\ntext {report['text_mb']:,} MB, prepared arrays {report['prepared_mb']:,} MB; one epoch = "
          f"{summary['tokens']:,} tokens at {summary['tokens_per_second']:,.0f} tokens/s")


if __name__ == "__main__":
    main()
