"""Benchmark: word tokenization of kjv.txt with the tokenizer before the fuzzing fixes (commit
d39b26c, stdlib re, chunks memoized) and now (NLTK-identical on any whitespace), side by side.

    python benchmarks/tokenize_before_after.py
"""

from __future__ import annotations

import subprocess
import time
import types
from pathlib import Path

from rnnkit.text.readers import iter_records
from rnnkit.text.tokenize import SentenceSplitter, WordTokenizer

KJV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kjv.txt"


def main() -> None:
    source = subprocess.run(["git", "show", "d39b26c:rnnkit/text/tokenize.py"], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    before = types.ModuleType("tokenize_before")
    exec(compile(source, "tokenize_before", "exec"), before.__dict__)
    splitter = SentenceSplitter()
    sentences = [s for r in iter_records(str(KJV)) for s in splitter.split(r.lower())]
    for name, tokenizer in [("before", before.WordTokenizer), ("now", WordTokenizer)] * 2:
        started = time.perf_counter()
        tokenizer().tokenize_many(sentences)
        print(f"{name:>6}: {time.perf_counter() - started:.2f} s for {len(sentences):,} sentences", flush=True)


if __name__ == "__main__":
    main()
