"""A language model's evaluation in float32 against bf16 autocast, side by side: the loss and the seconds.

    python benchmarks/eval_precision.py MODEL PREPARED [MODEL PREPARED ...] [--split valid] [--repeats 2]

The trainer evaluates in its training precision (``Engine.loss`` under autocast); this checks what
that costs in accuracy and gains in time on trained models: each pair is evaluated as the trainer
evaluates (``rnnkit.lm.evaluate.split_loss``, the model's mode) in float32 and in bf16, alternating,
``--repeats`` times each, and the largest difference in loss and the ratio of the median times are
printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rnnkit.data.corpus import PreparedCorpus
from rnnkit.io.modeldir import load_model
from rnnkit.lm.evaluate import resolve_mode, split_loss
from rnnkit.models.engine import cpu_has_bf16, open_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", metavar="MODEL PREPARED")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("give MODEL PREPARED pairs")
    print(f"this CPU computes bf16 in hardware: {cpu_has_bf16()}")
    for model_dir, prepared in zip(args.pairs[::2], args.pairs[1::2]):
        files, corpus = load_model(model_dir, kind="lm"), PreparedCorpus.open(prepared)
        mode = resolve_mode(files.info.get("training", {}).get("mode", "auto"), corpus)
        losses, seconds = {}, {"fp32": [], "bf16": []}
        for _ in range(args.repeats):
            for precision in ("fp32", "bf16"):
                engine = open_engine(files.config, files.params, engine="torch", precision=precision)
                started = time.perf_counter()
                losses[precision], tokens = split_loss(engine, corpus, args.split, mode)
                seconds[precision].append(time.perf_counter() - started)
        f32, bf16 = (statistics.median(seconds[p]) for p in ("fp32", "bf16"))
        print(f"{model_dir} on {args.split} ({tokens:,} tokens, {mode} mode): loss fp32 {losses['fp32']:.5f}, bf16 "
              f"{losses['bf16']:.5f} (difference {abs(losses['bf16'] - losses['fp32']):.1e} nats); "
              f"{f32:.1f} s against {bf16:.1f} s: bf16 {f32 / bf16:.2f}× as fast")


if __name__ == "__main__":
    main()
