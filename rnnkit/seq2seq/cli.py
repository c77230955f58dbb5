"""``rnnkit seq2seq …``: encoder–decoders with attention — train, translate, evaluate, attention."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rnnkit.cli.common import (
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
    return (f"Wrote {summary['out']} (attention {summary['attention']}): valid loss {summary['valid_loss']:.4f} per "
            f"character, CER {summary.get('valid_cer', float('nan')):.4f}, after {summary['steps']:,} steps "
            f"({summary['seconds']:.0f} s, {summary['tokens_per_second']:,.0f} tokens/s)")


def cmd_train(args: argparse.Namespace) -> int:
    from rnnkit.seq2seq.config import Seq2SeqTrainConfig
    from rnnkit.seq2seq.train import train_seq2seq

    def start(log):
        return train_seq2seq(args.data, args.out, log=log, **train_arguments(args, Seq2SeqTrainConfig))

    return run_training(args, start, _describe)


def cmd_translate(args: argparse.Namespace) -> int:
    from rnnkit.seq2seq import load_seq2seq

    model = load_seq2seq(args.model, engine=args.engine)
    texts = [line for line in input_lines(args.input, args.encoding_errors) if line.strip()]
    if not texts:
        raise RnnkitError(f"{args.input} holds no text to translate")
    for t in model.decode(texts, beam=args.beam, max_len=args.max_len, **constraints(args)):
        if args.json:
            print(json.dumps({"source": t.source, "output": t.output, "log_prob": t.log_prob}, ensure_ascii=False))
        else:
            print(t.output)
    return 0


def constraints(args: argparse.Namespace) -> dict[str, Any]:
    return {"guard": False, "window": None} if args.unconstrained else {}


def add_constraints(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unconstrained", action="store_true",
                   help="decode as the model alone would: no loop guard, no attention window")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rnnkit.seq2seq import evaluate_seq2seq, load_seq2seq

    report = evaluate_seq2seq(load_seq2seq(args.model, engine=args.engine), args.data, args.split, beam=args.beam,
                              limit=args.limit, **constraints(args))
    if args.json:
        print_json(report)
        return 0
    beam = f", beam {args.beam}" if args.beam > 1 else ""
    left_out = f"; left out {report['left_out']:,} longer than the model reads" if report["left_out"] else ""
    print(f"{args.model} on {args.data} ({args.split}, {report['pairs']:,} pairs{beam}{left_out}):")
    print(f"  {'':<10} {'CER':>7} {'word acc':>9} {'BLEU':>6}")
    rows = {"model": report["model"], "+ lexicon": report["model+lexicon"], **report["baselines"]}
    for name, r in rows.items():
        print(f"  {name:<10} {r['cer']:7.4f} {r['word_accuracy']:9.4f} {r['bleu']:6.1f}")
    print("  CER by source length:   " + "  ".join(f"{b['from']}-{b['to']}: {b['cer']:.3f}"
                                               for b in report["by_length"]["model"]))
    return 0


def cmd_attention(args: argparse.Namespace) -> int:
    from rnnkit.seq2seq import load_seq2seq, plot_attention

    translation = load_seq2seq(args.model, engine=args.engine).decode([args.text], beam=args.beam,
                                                                      **constraints(args))[0]
    plot_attention(translation, args.plot)
    print(translation.output)
    print(f"Wrote {args.plot}")
    return 0


def register(verbs: Any) -> None:
    seq2seq = verbs.add_parser("seq2seq", help="encoder-decoders with attention: train, translate, evaluate",
                               description="Sequence to sequence with attention (e.g. Folio to modern spelling).")
    actions = seq2seq.add_subparsers(dest="seq2seq_verb", metavar="ACTION", required=True)

    p = add_verb(actions, "train", cmd_train, "train an encoder-decoder on source<TAB>target pairs")
    p.add_argument("data", metavar="PAIRS", help="a directory with train.tsv and valid.tsv (rnnkit data get "
                                                 "shakespeare-folio), or one TSV file")
    p.add_argument("--out", required=True)
    from rnnkit.seq2seq.config import Seq2SeqTrainConfig

    add_training_flags(p, Seq2SeqTrainConfig)

    p = add_verb(actions, "translate", cmd_translate, "translate lines of text, one output per line")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", nargs="?", default="-", metavar="FILE", help="lines to translate (default: stdin)")
    p.add_argument("--beam", type=int, default=1, help="beam width (default 1: greedy)")
    p.add_argument("--max-len", type=int, help="longest output in tokens (default: the model's --max-target)")
    add_constraints(p)
    add_encoding_errors(p)
    add_engine_option(p)
    p.add_argument("--json", action="store_true")

    p = add_verb(actions, "evaluate", cmd_evaluate, "CER, word accuracy and BLEU beside the copy and lexicon baselines")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="PAIRS")
    p.add_argument("--split", default="test", choices=["valid", "test"])
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--limit", type=int, help="score this many pairs, drawn at random (default: all)")
    add_constraints(p)
    add_engine_option(p)
    p.add_argument("--json", action="store_true")

    p = add_verb(actions, "attention", cmd_attention, "draw where the decoder looked, as a heatmap")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--plot", required=True, metavar="FILE", help="the heatmap (PNG, SVG or PDF)")
    p.add_argument("--beam", type=int, default=1)
    add_constraints(p)
    add_engine_option(p)
