"""Verbs for text and corpora: ``rnnkit data``, ``rnnkit tokenize``, ``rnnkit prepare``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnkit.cli.common import add_encoding_errors, add_verb, print_json, say
from rnnkit.errors import RnnkitError


def cmd_data_list(args: argparse.Namespace) -> int:
    from rnnkit.data import corpora

    rows = corpora.list_corpora()
    if args.json:
        print_json({"cache_dir": str(corpora.cache_dir()), "corpora": rows})
        return 0
    print(f"cache: {corpora.cache_dir()}")
    for row in rows:
        where = row["path"] if row["cached"] else "not downloaded (rnnkit data get " + row["name"] + ")"
        say(f"{row['name']:<18} {row['description']}", f"{'':<18} source: {row['source']}", f"{'':<18} {where}")
    return 0


def cmd_data_get(args: argparse.Namespace) -> int:
    from rnnkit.data import corpora

    was_cached = corpora.is_cached(args.name) and not args.force
    if not was_cached and not args.json:
        print(f"Fetching the {args.name} corpus (once) ...", file=sys.stderr)
    path = corpora.get(args.name, force=args.force)
    files = [path] if path.is_file() else [path / file for file in corpora.CORPORA[args.name].files]
    if args.json:
        print_json({"name": args.name, "path": str(path), "bytes": sum(f.stat().st_size for f in files),
                    "files": {f.name: corpora.CORPORA[args.name].files[f.name] for f in files},
                    "was_cached": was_cached})
        return 0
    if path.is_dir():
        for f in files:
            with open(f, "rb") as handle:
                print(f"{f.name:<10} {sum(1 for _ in handle):>8,} lines", file=sys.stderr)
    print(path)
    return 0


def cmd_tokenize(args: argparse.Namespace) -> int:
    from rnnkit.text.pipeline import TextPipeline, join_tokens
    from rnnkit.text.readers import check_input, decoded_lines

    if (args.text is None) == (args.file is None):
        raise RnnkitError("give either TEXT or --file FILE (- for stdin)")
    if args.text is not None:
        lines = args.text.splitlines() or [""]
    else:
        check_input(args.file)
        lines = (line.rstrip("\r\n") for line in decoded_lines(args.file, args.encoding_errors))
    text = TextPipeline.create(args.level, args.tokenizer, args.lowercase)
    out = sys.stdout
    for line in lines:
        for tokens in text.sentences(line, args.sentences):
            out.write(join_tokens(tokens, args.level) + "\n")
    return 0


def prepare_summary(corpus) -> dict[str, Any]:
    meta = corpus.meta
    keys = ("sentences", "tokens", "unique_tokens", "vocab_size", "least_frequent_word", "least_frequent_count",
            "level", "splits", "example", "seconds", "input_chars")
    return {**{k: meta[k] for k in keys}, "out": str(corpus.path)}


def print_prepare_report(corpus) -> None:
    meta = corpus.meta
    example = meta["example"]
    unit = "sentences" if meta["level"] == "word" else "lines"
    kind = "word tokens" if meta["level"] == "word" else "characters"
    least = meta["least_frequent_word"]
    say(
        f"Parsed {meta['sentences']:,} {unit}.",
        f"Found {meta['unique_tokens']:,} unique {kind} (training split).",
        f"Using vocabulary size {meta['vocab_size']:,}.",
        f"The least frequent {kind[:-1]} in our vocabulary is {least!r} and appeared {meta['least_frequent_count']:,} times.",
        "",
        f"Example sentence: {example['text']!r}",
        f"Example sentence after pre-processing: {example['tokens']}",
        "",
    )
    for split, s in meta["splits"].items():
        unk = 100.0 * s["unknown"] / max(s["tokens"], 1)
        print(f"  {split:<5} {s['sentences']:>10,} {unit}  {s['tokens']:>12,} tokens  ({unk:.2f}% unknown)")
    rate = meta["input_chars"] / max(meta["seconds"], 1e-9) / 1e6
    print(f"Wrote {corpus.path} in {meta['seconds']:.1f} s ({rate:.1f} M characters/s).")


def cmd_prepare(args: argparse.Namespace) -> int:
    from rnnkit.data.prepare import prepare

    corpus = prepare(args.inputs, args.out, vocab_size=args.vocab_size, level=args.level, tokenizer=args.tokenizer,
                     lines=args.lines, unk_token=args.unk_token, column=args.column, field=args.field,
                     format=args.format, lowercase=args.lowercase, valid_fraction=args.valid_fraction,
                     test_fraction=args.test_fraction, valid_file=args.valid_file, test_file=args.test_file,
                     seed=args.seed, force=args.force, encoding_errors=args.encoding_errors,
                     split_tail=args.split_tail)
    if args.json:
        print_json(prepare_summary(corpus))
    else:
        print_prepare_report(corpus)
    return 0


def register(verbs: Any) -> None:
    data = verbs.add_parser("data", help="list and fetch the known corpora", description="List and fetch the known corpora.")
    data_verbs = data.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    p = add_verb(data_verbs, "list", cmd_data_list, "show the known corpora and which are cached")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_verb(data_verbs, "get", cmd_data_get, "fetch a corpus once into the cache and print its path")
    p.add_argument("name", help="corpus name (see `rnnkit data list`)")
    p.add_argument("--force", action="store_true", help="fetch again even if cached")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_verb(verbs, "tokenize", cmd_tokenize, "print the tokens of each input line")
    p.add_argument("text", nargs="?", help="text to tokenize (or use --file)")
    p.add_argument("--file", help="read lines from FILE (- for stdin)")
    p.add_argument("--level", choices=["word", "char"], default="word")
    p.add_argument("--tokenizer", choices=["treebank", "whitespace"], default="treebank")
    p.add_argument("--sentences", action="store_true", help="split each line into sentences, one per output line")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lower-case first (default: on for words, off for characters)")
    add_encoding_errors(p)

    p = add_verb(verbs, "prepare", cmd_prepare, "turn text into a prepared corpus: splits, vocabulary, token ids")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="text, CSV or JSON-lines files, gzipped or not; - for stdin")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--vocab-size", type=int, default=8000,
                   help="ids in the vocabulary, markers and unknown token included; 0 keeps every token (default 8000)")
    p.add_argument("--level", choices=["word", "char"], default="word")
    p.add_argument("--tokenizer", choices=["treebank", "whitespace"], default="treebank",
                   help="treebank (NLTK word_tokenize tokens) or whitespace (pre-tokenized text)")
    p.add_argument("--lines", action="store_true", help="each line or record is one sentence (no sentence splitting)")
    p.add_argument("--unk-token", default=None, help="the unknown token (default UNKNOWN_TOKEN; characters: U+FFFD)")
    p.add_argument("--format", choices=["auto", "text", "csv", "jsonl"], default="auto",
                   help="input format (default: from the file name)")
    p.add_argument("--column", default="body", help="CSV column with the text (default body)")
    p.add_argument("--field", default="text", help="JSON-lines field with the text (default text)")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lower-case the text (default: on for words, off for characters)")
    p.add_argument("--valid-fraction", type=float, default=None,
                   help="fraction of sentences held out for validation (default 0.05, or 0 with --valid-file)")
    p.add_argument("--test-fraction", type=float, default=0.0, help="fraction held out for testing (default 0)")
    p.add_argument("--valid-file", help="a ready-made validation split")
    p.add_argument("--test-file", help="a ready-made test split")
    p.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    p.add_argument("--split-tail", action="store_true",
                   help="validation (and test) are the end of the text, contiguous, as nanoGPT splits; "
                        "not sentences drawn at random")
    add_encoding_errors(p)
    p.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
