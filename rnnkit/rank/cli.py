"""``rnnkit rank …``: the retrieval chatbot — build a dataset, train, evaluate, predict."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
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


def cmd_build(args: argparse.Namespace) -> int:
    from rnnkit.rank.build import build_dataset
    from rnnkit.rank.dialogue import chat_dialogues, chitchat, shakespeare_plays

    if bool(args.dialogues) + args.shakespeare + args.chitchat != 1:
        raise RnnkitError("give chat logs (one 'speaker: text' turn per line), --chitchat or --shakespeare: one of them")
    left_out = {}
    if args.shakespeare:
        dialogues, split_by = shakespeare_plays(), "source"
    elif args.chitchat:
        (dialogues, left_out["one speaker"]), split_by = chitchat(), "dialogue"
    else:
        dialogues = [d for path in args.dialogues
                     for d in chat_dialogues(path, input_lines(path, args.encoding_errors))]
        split_by = "dialogue"
    meta = build_dataset(dialogues, args.out, context_turns=args.context_turns, split_by=split_by,
                         valid_fraction=args.valid_fraction, test_fraction=args.test_fraction, seed=args.seed,
                         force=args.force, left_out=left_out)
    if args.json:
        print_json({**meta, "out": args.out})
        return 0
    unit = meta["split_by"] + "s"
    for split, s in meta["splits"].items():
        shown = ", ".join(s["units"]) if split != "train" and unit == "plays" else f"{len(s['units']):,} {unit}"
        print(f"  {split:<5} {s['rows']:>7,} rows  {s['examples']:>7,} examples  ({shown})")
    for why, count in meta["left_out"].items():
        print(f"  left out {count:,} conversations with {why}")
    print(f"Wrote {args.out}: train.csv (Context,Utterance,Label), valid.csv and test.csv (Context,Ground Truth "
          f"Utterance,Distractor_0..8); contexts of up to {args.context_turns} turns")
    return 0


def _describe(summary: dict[str, Any]) -> str:
    speed = f", {summary['pairs_per_second']:,.0f} pairs/s" if "pairs_per_second" in summary else ""
    took = f" after {summary['steps']:,} steps ({summary['seconds']:.0f} s{speed})" if "steps" in summary else ""
    fit = summary.get("prior_fit")
    prior = (f"; prior {fit['weight']:g} against responses that suit any context (valid 1-of-{fit['one_of']} R@1 "
             f"{fit['R@1_without']:.3f} -> {fit['R@1_with']:.3f})") if fit else ""
    return f"Wrote {summary['out']} ({summary['model']}): valid R@1 {summary['valid_R@1']:.3f} in 1-of-10{took}{prior}"


def cmd_train(args: argparse.Namespace) -> int:
    from rnnkit.rank.config import RankTrainConfig
    from rnnkit.rank.train import train_ranker

    def start(log):
        return train_ranker(args.data, args.out, log=log, **train_arguments(args, RankTrainConfig))

    return run_training(args, start, _describe)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rnnkit.rank.evaluate import evaluate_ranker

    report = evaluate_ranker(args.model, args.data, split=args.split, engine=args.engine)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['model']} on {args.data} ({args.split}, {report['examples']:,} examples), 95% bootstrap intervals:")
    for name, label in (("R@1", "R@1 in 1-of-10"), ("R@2", "R@2 in 1-of-10"), ("R@5", "R@5 in 1-of-10"),
                        ("R@1_of_2", "R@1 in 1-of-2")):
        low, high = report["intervals"][name]
        print(f"  {label:<15} {report[name]:.3f}  [{low:.3f}, {high:.3f}]")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from rnnkit.rank.data import training_responses
    from rnnkit.rank.model import load_ranker

    if (args.candidates is None) == (args.responses is None):
        raise RnnkitError("give --candidates FILE (one per line) or --responses DATA (a ranking dataset), not both")
    ranker = load_ranker(args.model, engine=args.engine)
    if args.candidates is not None:
        candidates = [line for line in input_lines(args.candidates, args.encoding_errors) if line.strip()]
        ranked = ranker.rank(args.context, candidates)[: args.top]
    else:
        ranked = ranker.rank_repository(args.context, training_responses(args.responses), top=args.top)
    if args.json:
        print(json.dumps({"context": args.context, "ranked": ranked}, ensure_ascii=False))
    else:
        for r in ranked:
            print(f"{r['score']:10.4f}  {r['text']}")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A conversation: in a terminal, a prompt and the bot's answers; otherwise one person's turn
    per input line and one JSON answer per output line."""
    from rnnkit.rank.chat import Conversation
    from rnnkit.rank.data import training_responses
    from rnnkit.rank.model import load_ranker

    bot = Conversation(load_ranker(args.model, engine=args.engine), training_responses(args.responses),
                       args.context_turns)
    talking = sys.stdin.isatty()
    if talking:
        print(f"Talking to {args.model} ({len(bot.repository):,} responses); an empty line or Ctrl-D ends it.",
              file=sys.stderr)
    for number in itertools.count(1):
        try:
            line = decoded_turn(input("you: " if talking else ""), number, args.encoding_errors)
        except EOFError:
            return 0
        if not line.strip():
            if talking:
                return 0
            raise RnnkitError("an empty turn; give one turn per line")
        ranked = bot.reply(line, top=args.top)
        if not talking:
            print(json.dumps({"turn": line, "answer": ranked[0]["plain"], "ranked": ranked}, ensure_ascii=False),
                  flush=True)
            continue
        print(f"bot: {ranked[0]['plain']}")
        for r in ranked[1:]:
            print(f"     {r['score']:8.4f}  {r['plain']}")


def decoded_turn(line: str, number: int, errors: str) -> str:
    """A line of stdin as UTF-8 (Python hands its bytes over as they came, bad ones as lone
    surrogates): bad bytes stop the conversation with the line's number, or are replaced or
    dropped as ``--encoding-errors`` says."""
    from rnnkit.text.readers import ENCODING_ADVICE

    raw = line.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8", errors)
    except UnicodeDecodeError as e:
        raise RnnkitError(f"stdin line {number} is not valid UTF-8 (byte {e.start}); {ENCODING_ADVICE}") from None


def register(verbs: Any) -> None:
    rank = verbs.add_parser("rank", help="the retrieval chatbot: rank responses with a dual encoder",
                            description="Rank candidate responses to a context (a dual encoder, or baselines).")
    actions = rank.add_subparsers(dest="rank_verb", metavar="ACTION", required=True)

    p = add_verb(actions, "build", cmd_build, "turn dialogues into a ranking dataset (the UDC's CSV layout)")
    p.add_argument("dialogues", nargs="*", metavar="CHATLOG", help="chat logs: 'speaker: text' lines, blank lines "
                                                                   "between conversations")
    p.add_argument("--chitchat", action="store_true", help="the chit-chat corpus's two-person conversations (rnnkit "
                                                            "data get chitchat; split by conversation)")
    p.add_argument("--shakespeare", action="store_true", help="the plays of the default corpus (split by play)")
    p.add_argument("--out", required=True)
    p.add_argument("--context-turns", type=int, default=4, help="turns before the response (default 4)")
    add_encoding_errors(p)
    p.add_argument("--valid-fraction", type=float, default=0.1, help="plays (or conversations) held out (default 0.1)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="likewise for testing (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    p.add_argument("--json", action="store_true")

    from rnnkit.rank.config import RankTrainConfig

    p = add_verb(actions, "train", cmd_train, "fit a baseline or train a dual encoder on a ranking dataset")
    p.add_argument("data", metavar="DATA", help="a directory with train.csv and valid.csv")
    p.add_argument("--out", required=True)
    add_training_flags(p, RankTrainConfig)

    p = add_verb(actions, "evaluate", cmd_evaluate, "Recall@k of a ranker on a split, with 95% intervals")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--split", default="test", choices=["valid", "test"])
    add_engine_option(p)
    p.add_argument("--json", action="store_true")

    p = add_verb(actions, "chat", cmd_chat, "talk to a ranker: each answer the best response of a repository that "
                                            "repeats no turn of the conversation")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--responses", required=True, metavar="DATA",
                   help="a ranking dataset: its training responses are what the bot can say")
    p.add_argument("--top", type=int, default=1, help="show the runners-up too (default 1: the answer alone)")
    p.add_argument("--context-turns", type=int, default=4, help="the last turns the ranker reads (default 4, as "
                                                                 "`rank build` writes contexts)")
    add_encoding_errors(p)
    add_engine_option(p)

    p = add_verb(actions, "predict", cmd_predict, "rank candidate responses to a context, best first")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--context", required=True, help="the conversation so far")
    p.add_argument("--candidates", metavar="FILE", help="candidate responses, one per line (- for stdin)")
    p.add_argument("--responses", metavar="DATA", help="a ranking dataset: its training responses are the repository")
    p.add_argument("--top", type=int, default=10, help="how many to print (default 10)")
    add_encoding_errors(p)
    add_engine_option(p)
    p.add_argument("--json", action="store_true")
