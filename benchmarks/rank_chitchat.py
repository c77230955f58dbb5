"""Response ranking on real conversations (the chit-chat corpus): the baselines and the learned rankers, side by side.

    python benchmarks/rank_chitchat.py [--seconds 600] [--models combined hybrid reranker] [--keep DIR] [--json]

Builds the dataset as ``rnnkit rank build --chitchat`` does (two-person conversations, split by
conversation), then runs ``rank_shakespeare.compare`` on it: random, TF-IDF and BM25 fitted, each
learned ranker trained for the same wall time, one after the other in this process, every one
evaluated on the test split (Recall@1, 2, 5 in 1-of-10, 95% bootstrap intervals). It checks the
issue's bars: every learned ranker beats random and TF-IDF at R@1 by more than both intervals'
half-widths; the default (``DEFAULT_PRESET``) reaches R@1 0.60, R@2 0.75, R@5 0.93; the best reaches R@1
0.68 and leads TF-IDF and BM25 at R@1, R@2 and R@5 by more than both half-widths.
"""

from __future__ import annotations

from rank_shakespeare import arguments, beats, compare, half_width, report

from rnnkit.rank.dialogue import chitchat
from rnnkit.rank.config import DEFAULT_PRESET


def main() -> None:
    args = arguments(__doc__.splitlines()[0], ["combined", "hybrid", "reranker"])
    dialogues, _ = chitchat()
    rows, meta = compare(dialogues, "dialogue", args)
    by_name = {r["model"]: r for r in rows}
    learned = [r for r in rows if r["model"] in args.models]
    best = max(learned, key=lambda r: r["R@1"])
    checks = {f"{r['model']} beats random and tfidf at R@1": all(beats(r, by_name[b], "R@1")
                                                                 for b in ("random", "tfidf")) for r in learned}
    if DEFAULT_PRESET in by_name:
        d = by_name[DEFAULT_PRESET]
        checks[f"{DEFAULT_PRESET} (the default) reaches 0.60 / 0.75 / 0.93"] = (d["R@1"] >= 0.60 and d["R@2"] >= 0.75
                                                                               and d["R@5"] >= 0.93)
    checks[f"{best['model']} (the best) reaches R@1 0.68"] = best["R@1"] >= 0.68
    checks[f"{best['model']} leads tfidf and bm25 at R@1, R@2, R@5"] = all(
        beats(best, by_name[b], k) for b in ("tfidf", "bm25") for k in ("R@1", "R@2", "R@5"))
    result = {"test_examples": meta["splits"]["test"]["examples"], "seconds_per_model": args.seconds,
              "models": rows, "checks": checks, "R@1_half_widths": {r["model"]: half_width(r) for r in rows}}
    report(result, checks, args.json,
           f"test: {result['test_examples']:,} examples of {len(meta['splits']['test']['units']):,} conversations")


if __name__ == "__main__":
    main()
