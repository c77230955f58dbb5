"""What a person meets when talking to the chit-chat bot, measured: the rankers side by side.

    python benchmarks/chat_quality.py [--seconds 600] [--models tfidf bm25 hybrid hybrid,hard_negatives=0]
                                      [--contexts 300] [--keep DIR] [--json]

Builds the chit-chat dataset as ``rnnkit rank build --chitchat`` does (or reuses ``--keep DIR``'s),
then, one model after the other in this process (TF-IDF and BM25 fitted, each learned ranker
trained ``--seconds``; a model is a preset, then any ``option=value`` of ``rnnkit.rank.train``),
measures on the test split:

* **1-of-100**: each test context against the 100 true responses of its batch (Henderson et al.
  2019's standard; batches of 100 test examples in a fixed random order), with a 95% bootstrap
  interval; and R@1 in the UDC's 1-of-10 (``rank evaluate``), with its interval.
* **the whole repository**: ``--contexts`` test contexts, each ranking every training response
  (deduplicated as the bot's repository is) and the true responses of those contexts: the true
  response's R@1, R@10, R@100 and median rank.
* **first answers**, for the same contexts, of the model alone (the repository's best, the rule of
  old: only the bot's exact answers are left out) and of the bot (``rnnkit.rank.chat.answer``):
  the echo rate (answers whose word set's Jaccard similarity with the person's last turn is at
  least 0.5), distinct answers, the most common answer's share, and the bot's latency (p50, p99).
* **the scripted panel** (``benchmarks/chat_panel.txt``: conversations a person might have): the
  share of answers that repeat any earlier turn of their conversation (Jaccard ≥ 0.5), and of
  those that say again what one of the bot's earlier answers said (``rnnkit.rank.similar.
  says_again``: its loop on one topic), the model alone against the bot.

The bot leaves out near-duplicates by that same measure, so its echo and panel rates count what
the rule let through; the model's own rates are what training changed. Checks the issue's bars.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.rank import build_dataset, evaluate_ranker, load_ranker, train_ranker
from rnnkit.rank.chat import answer, context_of, plain, turns_of
from rnnkit.rank.data import read_eval, training_responses
from rnnkit.rank.dialogue import chitchat
from rnnkit.rank.metrics import recall_values, truth_first
from rnnkit.rank.similar import content_words, normalised, repeats, says_again, word_sets

PANEL = Path(__file__).with_name("chat_panel.txt")
BATCH = 100


def parse_model(spec: str) -> tuple[str, dict[str, Any]]:
    """``hybrid,hard_negatives=0`` → ("hybrid", {"hard_negatives": 0})."""
    name, *pairs = spec.split(",")
    options = {}
    for pair in pairs:
        key, value = pair.split("=")
        options[key] = json.loads(value) if value[:1].isdigit() or value in ("true", "false") else value
    return name, options


def bootstrap(values: np.ndarray, seed: int = 0, times: int = 1000) -> list[float]:
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(times, len(values)))].mean(axis=1)
    return [round(float(x), 3) for x in np.percentile(means, [2.5, 97.5])]


def one_of_100(ranker, contexts: list[str], truths: list[str]) -> np.ndarray:
    """Per example (in batches of 100 of a fixed random order): 1 if its true response scores
    above the batch's 99 others (a tie counts as a share)."""
    order = np.random.default_rng(0).permutation(len(contexts))
    hits = []
    for a in range(0, len(order) - BATCH + 1, BATCH):
        chosen = order[a:a + BATCH]
        batch_c, batch_r = [contexts[i] for i in chosen], [truths[i] for i in chosen]
        hits.append(recall_values(truth_first(ranker.score_rows(batch_c, [batch_r] * BATCH)), 1))
    return np.concatenate(hits)


def repository_ranks(ranker, repository: tuple[str, ...], contexts: list[str], truths: list[str]) -> np.ndarray:
    """The rank (1 = first) of each context's true response among the repository and the contexts'
    true responses (one entry per normalised spelling)."""
    index = {normalised(r): i for i, r in enumerate(repository)}
    pool = list(repository) + [t for t in dict.fromkeys(truths) if normalised(t) not in index]
    index.update({normalised(r): i for i, r in enumerate(pool) if normalised(r) not in index})
    pool = tuple(pool)
    ranks = []
    for context, truth in zip(contexts, truths):
        scores = ranker.score_one(context, pool)
        ranks.append(1 + int((scores > scores[index[normalised(truth)]]).sum()))
    return np.array(ranks)


def model_alone(ranker, repository: tuple[str, ...], turns: list[str], said: list[str]) -> str:
    """The repository's best after ``turns``, leaving out only the bot's exact answers (the rule
    the bot had before)."""
    ranked = ranker.rank_repository(context_of(turns), repository, top=len(said) + 1)
    return next(plain(r["text"]) for r in ranked if plain(r["text"]) not in said)


def first_answers(ranker, repository, contexts: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for who in ("model", "bot"):
        answers, echoes, times = [], [], []
        for context in contexts:
            turns = turns_of(context)
            started = time.perf_counter()
            said = model_alone(ranker, repository, turns, []) if who == "model" else \
                answer(ranker, repository, turns)[0]["plain"]
            times.append(time.perf_counter() - started)
            answers.append(normalised(said))
            echoes.append(repeats(said, word_sets(turns[-1:])))
        common = collections.Counter(answers).most_common(1)[0]
        rows[who] = {"echo": round(float(np.mean(echoes)), 3), "distinct": round(len(set(answers)) / len(answers), 3),
                     "most_common": common[0], "most_common_share": round(common[1] / len(answers), 3)}
        if who == "bot":
            ms = np.array(times) * 1000
            rows[who].update(p50_ms=round(float(np.median(ms)), 1), p99_ms=round(float(np.percentile(ms, 99)), 1))
    return rows


def panel_conversations() -> list[list[str]]:
    text = [line for line in PANEL.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return [c.split("\n") for c in "\n".join(text).strip().split("\n\n")]


def panel(ranker, repository) -> dict[str, Any]:
    """Each conversation of the panel, the model alone and the bot: answers repeating an earlier
    turn of their conversation (the person's current one included), answers saying again what
    one of the bot's earlier answers said (its loop on one topic), and the transcripts."""
    result: dict[str, Any] = {}
    for who in ("model", "bot"):
        repeated, again, transcripts = 0, 0, []
        for conversation in panel_conversations():
            turns: list[str] = []
            for person in conversation:
                turns.append(person)
                said = model_alone(ranker, repository, turns, turns[1::2]) if who == "model" else \
                    answer(ranker, repository, turns)[0]["plain"]
                repeated += repeats(said, word_sets(turns))
                again += says_again(said, [content_words(t) for t in turns[1::2]])
                turns.append(said)
            transcripts.append(turns)
        count = sum(len(c) for c in panel_conversations())
        result[who] = {"repeating": round(repeated / count, 3), "saying_again": round(again / count, 3),
                       "turns": count, "transcripts": transcripts}
    return result


def measure(name: str, path: Path, data: Path, test: tuple[list[str], list[str]], sample: list[int],
            repository: tuple[str, ...]) -> dict[str, Any]:
    ranker = load_ranker(path)
    contexts, truths = test
    hits = one_of_100(ranker, contexts, truths)
    udc = evaluate_ranker(path, data, split="test")
    picked_c, picked_t = [contexts[i] for i in sample], [truths[i] for i in sample]
    ranks = repository_ranks(ranker, repository, picked_c, picked_t)
    return {"model": name, "1_of_100": round(float(hits.mean()), 3), "1_of_100_interval": bootstrap(hits),
            "R@1_of_10": round(udc["R@1"], 3), "R@1_of_10_interval": [round(x, 3) for x in udc["intervals"]["R@1"]],
            **{f"repository_R@{k}": round(float((ranks <= k).mean()), 3) for k in (1, 10, 100)},
            "repository_median_rank": int(np.median(ranks)), "first_answers": first_answers(ranker, repository,
                                                                                           picked_c),
            "panel": panel(ranker, repository)}


def print_row(r: dict[str, Any]) -> None:
    m, b = r["first_answers"]["model"], r["first_answers"]["bot"]
    low, high = r["1_of_100_interval"]
    print(f"{r['model']:<28} 1-of-100 {r['1_of_100']:.3f} [{low:.3f}, {high:.3f}]  1-of-10 {r['R@1_of_10']:.3f}  "
          f"repo R@1/10/100 {r['repository_R@1']:.3f}/{r['repository_R@10']:.3f}/{r['repository_R@100']:.3f} "
          f"median {r['repository_median_rank']}  echo {m['echo']:.3f}->{b['echo']:.3f}  "
          f"distinct {m['distinct']:.2f}->{b['distinct']:.2f}  top share {m['most_common_share']:.3f}"
          f"->{b['most_common_share']:.3f}  panel repeats {r['panel']['model']['repeating']:.3f}"
          f"->{r['panel']['bot']['repeating']:.3f}  panel says again {r['panel']['model']['saying_again']:.3f}"
          f"->{r['panel']['bot']['saying_again']:.3f}  p50 {b['p50_ms']} ms  trained {r.get('train_seconds', 0):.0f} s",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="training time of each learned ranker")
    parser.add_argument("--models", nargs="+", default=["tfidf", "bm25", "hybrid"])
    parser.add_argument("--contexts", type=int, default=300, help="test contexts for the whole-repository rows")
    parser.add_argument("--keep", metavar="DIR", help="keep the dataset and models here (reused when there)")
    parser.add_argument("--measure-only", action="store_true", help="measure the models --keep holds, untrained again")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.keep or scratch)
        data = root / "data"
        if not (data / "meta.json").is_file():
            build_dataset(chitchat()[0], data, split_by="dialogue")
        contexts, candidates = read_eval(data, "test")
        test = (contexts, [c[0] for c in candidates])
        sample = sorted(np.random.default_rng(1).choice(len(contexts), args.contexts, replace=False).tolist())
        repository = training_responses(data)
        for spec in args.models:
            name, options = parse_model(spec)
            out = root / spec.replace(",", "_").replace("=", "-")
            started = time.perf_counter()
            if not (args.measure_only and (out / "config.json").is_file()):
                train_ranker(data, out, model=name, max_time=args.seconds, epochs=1000, log=lambda _: None,
                             force=True, **options)
            row = {"train_seconds": round(time.perf_counter() - started, 1)}
            row = {**measure(spec, out, data, test, sample, repository), **row}
            rows.append(row)
            if not args.json:
                print_row(row)
    default = rows[-1] if rows else None
    checks = {}
    if default is not None:
        checks = {f"{default['model']}: 1-of-100 at least 0.45": default["1_of_100"] >= 0.45,
                  f"{default['model']}: repository R@10 at least 0.18": default["repository_R@10"] >= 0.18,
                  f"{default['model']}: the bot's echo rate at most 1%":
                      default["first_answers"]["bot"]["echo"] <= 0.01,
                  f"{default['model']}: panel answers repeating at most 10%":
                      default["panel"]["bot"]["repeating"] <= 0.10,
                  f"{default['model']}: panel answers saying again what the bot said at most 10%":
                      default["panel"]["bot"]["saying_again"] <= 0.10,
                  f"{default['model']}: one answer p50 at most 50 ms": default["first_answers"]["bot"]["p50_ms"] <= 50}
    if args.json:
        print(json.dumps({"models": rows, "checks": checks}, indent=2))
        return
    for check, passed in checks.items():
        print(f"  {check}: {'yes' if passed else 'NO'}")


if __name__ == "__main__":
    main()
