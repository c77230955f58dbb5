"""Verbs for training: ``rnnkit train`` and ``rnnkit evaluate``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from rnnkit.cli.common import (
    add_cache_option,
    add_loop_options,
    add_verb,
    id_list,
    option_adder,
    print_json,
    run_training,
    train_arguments,
)


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


def register(verbs: Any) -> None:
    from rnnkit.lm.config import CHARACTERS, LONG_RUNS, SHORT_RUN

    p = add_verb(verbs, "train", cmd_train, "train a language model on a prepared corpus")
    p.add_argument("prepared", metavar="PREPARED", help="a directory written by `rnnkit prepare`")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--recipe", default="recommended", choices=["recommended", "seed"],
                   help="the settings the options below start from: recommended (default: a tied one-layer LSTM, "
                        "Adam, stream mode, sized to the budget) or seed (the tutorial's tanh RNN of 100, SGD, one "
                        "sentence a step)")
    from rnnkit.lm.config import TrainConfig

    option = option_adder(p, TrainConfig(), word="recommended")
    option("--cell", choices=["rnn", "gru", "lstm"])

    def by_budget(name: str) -> str:  # e.g. "0.002; 0.004 for a --max-time of 300 s or more"
        shown = lambda value: f"{value:g}" if isinstance(value, float) else str(value)  # noqa: E731
        text, last = shown(SHORT_RUN[name]), SHORT_RUN[name]
        for seconds, run in LONG_RUNS:
            if run[name] != last:
                text, last = text + f"; {shown(run[name])} for a --max-time of {seconds:.0f} s or more", run[name]
        return text

    option("--hidden", type=int, help="recurrent units", shown=by_budget("hidden"))
    option("--layers", type=int, help="stacked recurrent layers")
    option("--embedding", type=int, help="embedding size (none: rnn takes one-hot words; gru and lstm the hidden size)")
    option("--tie", action=argparse.BooleanOptionalAction,
           help="the output matrix is the embedding's transpose (default: when the sizes allow, for gru and lstm)")
    option("--bidirectional", action="store_true", help="(refused: a bidirectional model is an encoder, not an LM)")
    option("--dropout", type=float, help="dropout on the embedding, between layers and on the output")
    option("--softmax", choices=["full", "adaptive"],
           help="the output layer: full, or adaptive (frequent words in a head, rare ones in clusters behind "
                "narrower projections: several times less work for large vocabularies; gru and lstm, untied)")
    option("--cutoffs", type=id_list, metavar="N,N",
           help="adaptive softmax: the first id of each tail cluster (none: the head covers 90%% of the training "
                "tokens, a first cluster up to 98%%)")
    option("--projection", type=int, metavar="N",
           help="gru, lstm: project the top states to N before the output layer (and, tied, the embedding): the "
                "product with the whole vocabulary costs N wide, not the hidden size (0: none)")
    option("--mode", choices=["auto", "sentence", "stream"],
           help="stream (the text as one sequence, the state carried), sentence (each sentence alone, padded "
                "batches), or auto (sentence for words, stream for characters)")
    option("--bptt", type=int, help="stream mode: steps per window")
    option("--forget-bias", type=float, metavar="B",
           help="lstm: the forget gate's bias starts B higher (0: PyTorch's own initialisation)")
    option("--bptt-truncate", type=int, help="numpy engine, rnn: steps each output's error flows back (the seed's 4)")
    add_loop_options(p, option, shown={"lr": by_budget("lr") + " (the last on words)",
                                       "epochs": f"{TrainConfig.EPOCHS:g}",
                                       "decay": f"auto: {by_budget('decay')}",
                                       "weight_decay": by_budget("weight_decay")
                                       + f" ({CHARACTERS['weight_decay']:g} on characters)"})

    p = add_verb(verbs, "plot", cmd_plot, "draw a training run's loss curve again (from MODEL/metrics.jsonl)")
    p.add_argument("model", metavar="MODEL", help="a directory a training run wrote (any kind)")
    p.add_argument("--out", help="the figure to write: .png, .svg or .pdf (default MODEL/loss.png)")
    p.add_argument("--log-scale", action="store_true", help="losses on a logarithmic axis")

    p = add_verb(verbs, "evaluate", cmd_evaluate, "loss and perplexity of a trained model on a prepared split")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("prepared", metavar="PREPARED")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
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
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
    p.add_argument("--mode", default="auto", choices=["auto", "sentence", "stream"])
    p.add_argument("--json", action="store_true")

    from rnnkit.lm.dynamic import SEGMENT

    p = add_verb(verbs, "fit-dynamic", cmd_fit_dynamic, "fit a language model's dynamic evaluation (learning "
                 "rate, decay) on a prepared split and save it in the model directory")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("prepared", metavar="PREPARED", help="the corpus the model was trained on (its validation split)")
    p.add_argument("--segment", type=int, default=SEGMENT, help=f"tokens read between updates (default {SEGMENT})")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
    p.add_argument("--json", action="store_true")
