"""Benchmark: scoring and generation speed with the seed's model size (RNN, H=100, C=8000), CPU.

    python benchmarks/use_speed.py [--json]

A model of the seed's size over kjv.txt's vocabulary (weights as initialised: speed does not
depend on training) scores every verse of kjv.txt — one sentence per line, tokenized as the
corpus was, batched by length — and generates 1,000 sentences in one batch. Both engines, one
after the other in one process.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import rnnkit
from rnnkit.io.modeldir import ModelFiles, save_model
from rnnkit.lm.train import special_tokens
from rnnkit.lm.config import LMConfig
from rnnkit.models.schema import init_params

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", type=int, default=1000, help="sentences to generate")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kjv = DATA / "kjv.txt"
    if not kjv.exists():
        sys.exit(f"{kjv} not found: this benchmark needs ../shared/data")
    lines = [line for line in kjv.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = rnnkit.prepare(kjv, Path(tmp) / "kjv", vocab_size=8000)
        config = LMConfig("rnn", len(corpus.vocab), 100)  # the seed's model, untrained (speed only)
        params = init_params(config, np.random.RandomState(0))
        save_model(Path(tmp) / "model", ModelFiles(config, corpus.text, corpus.vocab, params,
                                                   special_tokens(corpus, "sentence")))
        for engine in ("numpy", "torch"):
            model = rnnkit.load(Path(tmp) / "model", engine=engine, device="cpu")
            started = time.perf_counter()
            scores = model.score(lines)
            score_seconds = time.perf_counter() - started
            started = time.perf_counter()
            samples = model.generate(n=args.generate, min_length=1, max_length=60, seed=0)
            generate_seconds = time.perf_counter() - started
            generated = sum(len(s["tokens"]) + 1 for s in samples)
            results.append({"engine": engine, "sentences": len(scores),
                            "score_sentences_per_second": round(len(scores) / score_seconds),
                            "score_tokens_per_second": round(sum(s.tokens for s in scores) / score_seconds),
                            "generated_tokens": generated,
                            "generate_tokens_per_second": round(generated / generate_seconds)})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"RNN H=100, vocabulary 8000, float32, CPU; score {len(lines):,} verses of kjv.txt; "
          f"generate {args.generate:,} sentences at once")
    for r in results:
        print(f"  {r['engine']:>5}: score {r['score_sentences_per_second']:>7,} sentences/s "
              f"({r['score_tokens_per_second']:,} tokens/s); generate {r['generate_tokens_per_second']:,} tokens/s")


if __name__ == "__main__":
    main()
