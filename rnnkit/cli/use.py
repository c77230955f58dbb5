"""Verbs that use a trained language model: ``rnnkit generate``, ``rnnkit score``, ``rnnkit rerank``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rnnkit.cli.common import add_cache_option, add_encoding_errors, add_verb, input_lines, print_json
from rnnkit.errors import RnnkitError


def cmd_generate(args: argparse.Namespace) -> int:
    from rnnkit.lm.model import load

    model = load(args.model, engine=args.engine, cache=args.cache)
    texts = model.generate(n=args.n, min_length=args.min_length, max_length=args.max_length, seed=args.seed,
                           temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, prime=args.prime,
                           length=args.length)
    if args.json:
        print_json(texts)
    else:
        separator = "\n" + "-" * 40 + "\n" if model.level == "char" else "\n"
        print(separator.join(t["text"] for t in texts))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from rnnkit.lm.model import load, summarize

    model = load(args.model, engine=args.engine, cache=args.cache)
    lines = [line for line in input_lines(args.file, args.encoding_errors) if line.strip()]
    if not lines:
        raise RnnkitError("no sentences to score; give one sentence per line")
    scores = model.score(lines, per_token=args.per_token, tokenized=args.tokenized, dynamic=args.dynamic)
    summary = summarize(scores)
    if args.json:
        for score in scores:
            print(json.dumps(score.as_dict(), ensure_ascii=False))
        print(json.dumps(summary))
        return 0
    print(f"{'logprob':>10} {'tokens':>6} {'perplexity':>10}  sentence")
    for score in scores:
        print(f"{score.logprob:10.3f} {score.tokens:6d} {score.perplexity:10.2f}  {score.text}")
        if args.per_token:
            print("            " + "  ".join(f"{t} {p:.4f}" for t, p in score.token_probs))
    print(f"all {summary['sentences']:,} sentences: logprob {summary['logprob']:.3f} over {summary['tokens']:,} "
          f"tokens, perplexity {summary['perplexity']:.2f}")
    return 0


def cmd_rerank(args: argparse.Namespace) -> int:
    from rnnkit.lm.model import load
    from rnnkit.lm.nbest import read_nbest

    groups = read_nbest(input_lines(args.nbest, args.encoding_errors))
    if not groups:
        raise RnnkitError(f"{args.nbest} holds no candidates; give groups separated by blank lines, "
                          "or TSV group_id<TAB>sentence")
    model = load(args.model, engine=args.engine)
    results = model.rerank(groups, length_norm=args.length_norm)
    if args.json:
        print_json(results)
    else:
        print("\n".join(r["best"] for r in results))
    return 0


def register(verbs: Any) -> None:
    p = add_verb(verbs, "generate", cmd_generate, "sample text from a trained model")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-n", type=int, default=10, help="how many sentences (character models: samples)")
    p.add_argument("--min-length", type=int, default=7, help="draw again sentences shorter than this (default 7)")
    p.add_argument("--max-length", type=int, default=100, help="longest sentence, in tokens (default 100)")
    p.add_argument("--seed", type=int, default=None, help="the same seed gives the same text")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--prime", default=None, help="start from this text")
    p.add_argument("--length", type=int, default=200, help="character models: characters to generate")
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
    add_cache_option(p)
    p.add_argument("--json", action="store_true")

    p = add_verb(verbs, "score", cmd_score, "log-probability and perplexity of each sentence (one per line)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="sentences, one per line (default stdin)")
    p.add_argument("--per-token", action="store_true", help="also each token's probability")
    p.add_argument("--tokenized", action="store_true", help="lines are already tokens separated by spaces")
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
    add_cache_option(p)  # with a cache the lines are one text, read in order
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic evaluation (fitted by `rnnkit fit-dynamic`): the lines read as one stream, the "
                        "model adapting to them as it reads")
    add_encoding_errors(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line, then a summary object")

    p = add_verb(verbs, "rerank", cmd_rerank, "pick the likeliest candidate of each group of an n-best list")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("nbest", metavar="NBEST", help="groups separated by blank lines, or TSV group_id<TAB>sentence")
    p.add_argument("--length-norm", action="store_true", help="compare log-probability per token")
    add_encoding_errors(p)
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
    p.add_argument("--json", action="store_true", help="every candidate's score too")
