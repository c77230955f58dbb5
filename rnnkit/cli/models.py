"""Verbs for looking inside models: ``rnnkit gradcheck``, ``rnnkit vanishing``, ``rnnkit
import-tutorial``, ``rnnkit bench``."""

from __future__ import annotations

import argparse
from typing import Any

from rnnkit.cli.common import add_verb, id_list, print_json
from rnnkit.errors import RnnkitError


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from rnnkit.models.numpy import gradient_check, initialize
    from rnnkit.models.threads import one_blas_thread

    if args.vocab_size < 2 or args.hidden < 1 or args.length < 1 or args.layers < 1 or (args.embedding or 1) < 1:
        raise RnnkitError("--vocab-size must be at least 2; --hidden, --length, --layers and --embedding at least 1")
    if args.tie and args.embedding is None and args.cell == "rnn":
        args.embedding = args.hidden
    model = initialize(args.cell, args.vocab_size, args.hidden, bptt_truncate=args.bptt_truncate, layers=args.layers,
                       embedding=args.embedding, tie=args.tie, bidirectional=args.bidirectional,
                       cutoffs=tuple(args.cutoffs or ()), rng=np.random.RandomState(args.seed))
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
        print_json({"passed": passed, "max_relative_error": errors, "threshold": args.threshold,
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


def cmd_vanishing(args: argparse.Namespace) -> int:
    from rnnkit.analysis.vanishing import compare, plot

    results, source = compare(args.models, args.cell, data=args.data, split=args.split, distance=args.distance,
                              windows_count=args.windows, losses_per_window=args.losses_per_window,
                              hidden=args.hidden, layers=args.layers, activation=args.activation,
                              init_scale=args.init_scale, clip=args.clip, seed=args.seed)
    if args.plot:
        plot(results, args.plot, f"Gradient reaching k steps back: {source}")
    if args.json:
        print_json({"results": [r.as_dict() for r in results], "distance": args.distance, "windows": args.windows,
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


def cmd_import_tutorial(args: argparse.Namespace) -> int:
    from rnnkit.compat.tutorial_import import import_tutorial

    out = import_tutorial(args.npz, args.out, vocab=args.vocab, vocab_from=args.vocab_from, force=args.force)
    print(f"Wrote {out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rnnkit.bench import numpy_step

    result = numpy_step.run(repeats=args.repeats)
    if args.json:
        print_json(result)
    else:
        print(f"One sgd_step, C={result['vocab_size']}, H={result['hidden']}, a {result['length']}-word sentence, "
              f"bptt_truncate={result['bptt_truncate']}, {result['dtype']}")
        print(f"  gradients agree: largest difference {result['max_gradient_difference']:.1e}")
        print(f"  seed code (baseline, 1 BLAS thread): {result['seed_ms']:8.2f} ms")
        print(f"  rnnkit numpy engine:                 {result['rnnkit_ms']:8.2f} ms")
        print(f"  speedup: {result['speedup']:.1f}x")
    return 0


def register(verbs: Any) -> None:
    p = add_verb(verbs, "gradcheck", cmd_gradcheck, "check backpropagation against numerical gradients (the seed's check)")
    p.add_argument("--cell", default="rnn", choices=["rnn", "gru", "lstm"])
    p.add_argument("--vocab-size", type=int, default=100)
    p.add_argument("--hidden", type=int, default=10)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--embedding", type=int, default=None,
                   help="embedding size (default: one-hot input for rnn, the hidden size for gru and lstm)")
    p.add_argument("--tie", action="store_true", help="tie the output matrix to the embedding")
    p.add_argument("--bidirectional", action="store_true", help="a bidirectional encoder (gru, lstm)")
    p.add_argument("--cutoffs", type=id_list, metavar="N,N",
                   help="an adaptive softmax (gru, lstm) with these cutoffs, e.g. 2,4: the targets 1…4 then "
                        "reach the head and both clusters")
    p.add_argument("--bptt-truncate", type=int, default=1000, help="default 1000: full BPTT, as the check needs")
    p.add_argument("--length", type=int, default=4, help="sentence length (default 4: the seed's [0, 1, 2, 3])")
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--h", type=float, default=1e-3, help="finite-difference step (default 0.001)")
    p.add_argument("--threshold", type=float, default=0.01, help="largest relative error allowed (default 0.01)")
    p.add_argument("--json", action="store_true")

    p = add_verb(verbs, "import-tutorial", cmd_import_tutorial, "turn the tutorial's saved npz model into a model directory")
    p.add_argument("npz", metavar="FILE.npz")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--vocab", help="the model's vocabulary: one token per line, line number = id")
    group.add_argument("--vocab-from", metavar="PREPARED", help="take the vocabulary of a prepared corpus")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")

    p = add_verb(verbs, "vanishing", cmd_vanishing, "measure how the gradient fades (or explodes) with distance in time")
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
    p.add_argument("--init-scale", type=float, default=1.0, help="multiply the fresh recurrent matrices W by this")
    p.add_argument("--clip", type=float, help="also report the weights' gradient norm clipped to this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="FILE", help="write a log-scale plot (PNG, SVG or PDF)")
    p.add_argument("--json", action="store_true")

    bench = verbs.add_parser("bench", help="benchmarks", description="Benchmarks.")
    bench_verbs = bench.add_subparsers(dest="bench_verb", metavar="BENCHMARK", required=True)
    p = add_verb(bench_verbs, "numpy-step", cmd_bench, "one SGD step: the seed's code against rnnkit's numpy engine")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", action="store_true")
