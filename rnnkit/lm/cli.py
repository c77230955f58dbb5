"""The language model's verbs: ``rnnkit train``, ``evaluate``, ``fit-cache``, ``fit-dynamic``,
``plot``, and those that use a model: ``generate``, ``score``, ``rerank``."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rnnkit.cli.common import (
    add_cache_option,
    add_encoding_errors,
    add_engine_option,
    add_training_flags,
    add_verb,
    input_lines,
    print_json,
    run_training,
    train_arguments,
)
from rnnkit.errors import RnnkitError


def _describe(summary: dict[str, Any]) -> str:
    split = "valid" if "valid_perplexity" in summary else "train"
    return (f"Wrote {summary['out']}: {split} perplexity {summary[f'{split}_perplexity']:.2f} after "
            f"{summary['steps']:,} steps ({summary['seconds']:.0f} s, {summary['tokens_per_second']:,.0f} tokens/s); "
            f"loss plot in {summary['out']}/loss.png")


def cmd_train(args: argparse.Namespace) -> int:
    from rnnkit.lm import TrainConfig, train

    def start(log):
        return train(args.prepared, args.out, recipe=args.recipe, log=log, **train_arguments(args, TrainConfig))

    return run_training(args, start, _describe)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rnnkit.lm.model import evaluate_model

    result = evaluate_model(args.model, args.prepared, split=args.split, engine=args.engine, mode=args.mode,
                            cache=args.cache, dynamic=args.dynamic)
    if args.json:
        print_json(result)
        return 0
    print(f"{args.split}: loss {result['loss']:.4f} nats per token, perplexity {result['perplexity']:.2f} "
          f"over {result['tokens']:,} tokens ({result['engine']} engine, {result['mode']} mode)")
    if "cache" in result:
        without, cache = result["without_cache"], result["cache"]
        print(f"  with the neural cache (window {cache['window']:,}, λ {cache['lam']:g}); without it: loss "
              f"{without['loss']:.4f}, perplexity {without['perplexity']:.2f}")
    if "dynamic" in result:
        dynamic, settings = result["dynamic"], result["dynamic"]["settings"]
        cached = ", with the cache" if "without_cache" in dynamic else ""
        print(f"dynamic evaluation (one stream, lr {settings['lr']:g}, decay {settings['decay']:g}{cached}): loss "
              f"{dynamic['loss']:.4f}, perplexity {dynamic['perplexity']:.2f}")
    return 0


def _report_fit(args: argparse.Namespace, fitted, line: str) -> int:
    """What a fit-* command prints: the fit as JSON, or its one line."""
    print_json(fitted.as_dict()) if args.json else print(line)
    return 0


def cmd_fit_dynamic(args: argparse.Namespace) -> int:
    from rnnkit.lm.model import load

    fitted = load(args.model, engine=args.engine, cache=0).fit_dynamic(args.prepared, split=args.split,
                                                                       segment=args.segment)
    return _report_fit(args, fitted, (
        f"Fitted dynamic evaluation of {args.model} on the first {fitted.tokens:,} tokens of {args.split}: lr "
        f"{fitted.dynamic.lr:g}, decay {fitted.dynamic.decay:g}, segments of {fitted.dynamic.segment}; perplexity "
        f"{math.exp(fitted.loss):.2f} -> {math.exp(fitted.dynamic_loss):.2f}. Saved in {args.model}/config.json: "
        "evaluate --dynamic and score --dynamic use it"))


def cmd_fit_cache(args: argparse.Namespace) -> int:
    from rnnkit.lm.model import load

    fitted = load(args.model, engine=args.engine).fit_cache(args.prepared, split=args.split, window=args.window,
                                                            mode=args.mode)
    return _report_fit(args, fitted, (
        f"Fitted the neural cache of {args.model} on {args.split} ({fitted.tokens:,} tokens, window "
        f"{fitted.cache.window:,}): λ {fitted.cache.lam:g}, θ {fitted.cache.theta:.4g}; perplexity "
        f"{math.exp(fitted.loss):.2f} -> {math.exp(fitted.cached_loss):.2f}. Saved in {args.model}/config.json: "
        "evaluate, score, generate and serve use it (--cache 0 turns it off)"))


def cmd_plot(args: argparse.Namespace) -> int:
    from rnnkit.trainer.record import plot_run

    print(f"Wrote {plot_run(args.model, args.out, log_scale=args.log_scale)}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from rnnkit.lm.generate import Sampling
    from rnnkit.lm.model import load
    from rnnkit.options import given

    model = load(args.model, engine=args.engine, cache=args.cache)
    texts = model.generate(**given(args, Sampling))
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
    from rnnkit.lm.config import RECIPES, TrainConfig

    p = add_verb(verbs, "train", cmd_train, "train a language model on a prepared corpus")
    p.add_argument("prepared", metavar="PREPARED", help="a directory written by `rnnkit prepare`")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--recipe", default="recommended", choices=list(RECIPES),
                   help="the settings the options below start from: recommended (default: a tied one-layer LSTM, "
                        "Adam, stream mode, sized to the budget) or seed (the tutorial's tanh RNN of 100, SGD, one "
                        "sentence a step)")
    add_training_flags(p, TrainConfig, word="recommended")

    p = add_verb(verbs, "plot", cmd_plot, "draw a training run's loss curve again (from MODEL/metrics.jsonl)")
    p.add_argument("model", metavar="MODEL", help="a directory a training run wrote (any kind)")
    p.add_argument("--out", help="the figure to write: .png, .svg or .pdf (default MODEL/loss.png)")
    p.add_argument("--log-scale", action="store_true", help="losses on a logarithmic axis")

    p = add_verb(verbs, "evaluate", cmd_evaluate, "loss and perplexity of a trained model on a prepared split")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("prepared", metavar="PREPARED")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    add_engine_option(p)
    p.add_argument("--mode", default="auto", choices=["auto", "sentence", "stream"])
    add_cache_option(p)
    p.add_argument("--dynamic", action="store_true",
                   help="also dynamic evaluation (fitted by `rnnkit fit-dynamic`): the split read as one stream, "
                        "the model adapting to it as it reads")
    p.add_argument("--json", action="store_true")

    from rnnkit.lm.cache import DEFAULT_WINDOW

    p = add_verb(verbs, "fit-cache", cmd_fit_cache, "fit a language model's neural cache (λ, θ) on a prepared split "
                 "and save it in the model directory")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("prepared", metavar="PREPARED", help="the corpus the model was trained on (its validation split)")
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                   help=f"positions the cache remembers (default {DEFAULT_WINDOW})")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    add_engine_option(p)
    p.add_argument("--mode", default="auto", choices=["auto", "sentence", "stream"])
    p.add_argument("--json", action="store_true")

    from rnnkit.lm.dynamic import SEGMENT

    p = add_verb(verbs, "fit-dynamic", cmd_fit_dynamic, "fit a language model's dynamic evaluation (learning "
                 "rate, decay) on a prepared split and save it in the model directory")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("prepared", metavar="PREPARED", help="the corpus the model was trained on (its validation split)")
    p.add_argument("--segment", type=int, default=SEGMENT, help=f"tokens read between updates (default {SEGMENT})")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    add_engine_option(p)
    p.add_argument("--json", action="store_true")

    from rnnkit.lm.generate import Sampling
    from rnnkit.options import add_flags

    p = add_verb(verbs, "generate", cmd_generate, "sample text from a trained model")
    p.add_argument("model", metavar="MODEL")
    add_flags(p, Sampling)
    add_engine_option(p)
    add_cache_option(p)
    p.add_argument("--json", action="store_true")

    p = add_verb(verbs, "score", cmd_score, "log-probability and perplexity of each sentence (one per line)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="sentences, one per line (default stdin)")
    p.add_argument("--per-token", action="store_true", help="also each token's probability")
    p.add_argument("--tokenized", action="store_true", help="lines are already tokens separated by spaces")
    add_engine_option(p)
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
    add_engine_option(p)
    p.add_argument("--json", action="store_true", help="every candidate's score too")
