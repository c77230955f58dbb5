"""Does ``torch.compile`` pay on this CPU? Training tokens/s of the peer's model, eager then compiled.

    python benchmarks/torch_compile.py PREPARED [--seconds 30] [--softmax full|adaptive]

PyTorch's word_language_model's model and settings (LSTM 2 × 200, untied, dropout 0.2, SGD at 20,
batch 20 × 35), built and fed as ``rnnkit train`` builds and feeds it. Each mode runs in its own
process, one after the other; the compiled one's warm-up (the compilation) is reported apart and
left out of its tokens/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def measure(prepared: str, mode: str, seconds: float, softmax: str) -> dict:
    import numpy as np
    import torch

    from rnnkit.data.corpus import PreparedCorpus
    from rnnkit.lm.config import make_config
    from rnnkit.lm.train import LMTask
    from rnnkit.models.engine import open_engine
    from rnnkit.models.schema import init_params

    corpus = PreparedCorpus.open(prepared)
    cfg = make_config(cell="lstm", layers=2, hidden=200, embedding=200, tie=False, dropout=0.2, bptt=35,
                      batch_size=20, optimizer="sgd", lr=20.0, engine="torch", softmax=softmax).resolve(corpus)
    model = cfg.model_config(len(corpus.vocab))
    engine = open_engine(model, init_params(model, np.random.RandomState(0)), engine="torch", device="cpu",
                         optimizer="sgd", clip=0.25)
    if mode == "compiled":
        engine.forward_module = torch.compile(engine.forward_module)
    task = LMTask(corpus, cfg, engine)
    batches, carry = task.batches(np.random.default_rng(0), 0), task.initial_carry()
    started = time.perf_counter()
    for _ in range(5):
        _, _, carry = task.train_step(next(batches), cfg.lr, carry)
    warm_up = time.perf_counter() - started
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        _, _, carry = task.train_step(next(batches), cfg.lr, carry)
        steps += 1
    tokens = steps * cfg.batch_size * cfg.bptt
    return {"mode": mode, "tokens_per_second": tokens / (time.perf_counter() - started), "warm_up_seconds": warm_up}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--softmax", default="full", choices=["full", "adaptive"])
    parser.add_argument("--mode", choices=["eager", "compiled"], help=argparse.SUPPRESS)  # one child's run
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.prepared, args.mode, args.seconds, args.softmax)))
        return
    results = {}
    for mode in ("eager", "compiled"):
        child = subprocess.run([sys.executable, __file__, args.prepared, "--seconds", str(args.seconds),
                                "--softmax", args.softmax, "--mode", mode], capture_output=True, text=True, check=True)
        results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{mode:>8}: {results[mode]['tokens_per_second']:>8,.0f} tokens/s "
              f"(warm-up {results[mode]['warm_up_seconds']:.1f} s)", flush=True)
    ratio = results["compiled"]["tokens_per_second"] / results["eager"]["tokens_per_second"]
    print(f"compiled / eager: {ratio:.2f}×")


if __name__ == "__main__":
    main()
