"""rnnkit side by side with the tools people would pick instead, in one run on this machine.

    python benchmarks/peers.py            # the full comparison (75 minutes on 2 cores)
    python benchmarks/peers.py --quick    # a few minutes: shorter budgets, one time point

The peers are run from ../shared/peers as they are, in a virtual environment of their own
(``benchmarks/.peers-venv``: the same torch as rnnkit's, numpy, and requests for nanoGPT's prepare
script), each in a temporary copy so that nothing is written into ../shared. Nothing of their code
is part of rnnkit. Each pair runs one after the other, and the table gives both figures and the
ratio:

(a) word level, kjv-lm: PyTorch's ``word_language_model`` with its defaults (LSTM 2 × 200, SGD at
    20, batch 20, bptt 35, dropout 0.2, PyTorch's initialisation of the LSTM: its forget gate's bias
    not raised) against the same model and settings in ``rnnkit train``,
    for the same wall time: rnnkit's defaults for precision (bf16 autocast on a CPU with bf16 in
    hardware) with the full softmax, then float32, then the adaptive softmax; training tokens/s, and
    validation perplexity after epoch 1; then five pairs of one-epoch runs, peer then rnnkit at its
    default precision with the same seed (1 to 5): the median of all pairs' speed ratios (the
    machine's speed drifts between runs: one pair is one draw of it) and the mean perplexity after
    epoch 1 over the seeds (at these settings one run's figure is a draw of several points);
(b) the peer's defaults against ``rnnkit train PREPARED --out M --max-time T`` with no other
    option: validation perplexity at equal wall time. The peer evaluates at the end of each epoch;
    its figure is its best evaluation finished before rnnkit's process ended (which includes its
    start-up, final evaluation and writing), so the peer never has less time than rnnkit, and, as
    rnnkit's, it is the model it keeps (the peer saves the best, rnnkit keeps the best);
(c) characters, tinyshakespeare split as nanoGPT splits it (first 90% train, last 10%
    validation): nanoGPT's CPU configuration as its README runs it (2,000 iterations) against
    ``rnnkit train`` on characters with no option, for nanoGPT's wall time; then both for the same
    10 minutes: rnnkit with ``--max-time 600``, nanoGPT with its iterations (and the decay of its
    rate over them) sized to fill them, from a short timed run of its own. nanoGPT's validation
    loss is its own estimate (20 batches of 12 × 64 characters; at equal time the mean of its last
    six, about as many characters as the split holds); rnnkit's is over the whole validation
    split, in nats per character both.

``--parts`` runs some of the three (``--parts bc``); the table is of those.
Wall times are from each process's start to the line that reports the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rnnkit.models.engine import cpu_has_bf16

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
PEERS, DATA = SHARED / "peers", SHARED / "data"
VENV = ROOT / "benchmarks" / ".peers-venv"
VALID_WORDS, VALID_LINES = 70_846, 3_110  # kjv-lm's validation split, as the peer reads it
AUTO_PRECISION = "bf16 here" if cpu_has_bf16() else "fp32 here"  # what rnnkit's default precision is on this CPU

PEER_SETTINGS = ["--engine", "torch", "--cell", "lstm", "--layers", "2", "--hidden", "200", "--embedding", "200",
                 "--no-tie", "--dropout", "0.2", "--mode", "stream", "--bptt", "35", "--batch-size", "20",
                 "--optimizer", "sgd", "--lr", "20", "--clip", "0.25",
                 "--forget-bias", "0"]  # PyTorch's initialisation of the LSTM, as the peer's
NANOGPT_CPU = ["--device=cpu", "--compile=False", "--eval_iters=20", "--block_size=64", "--batch_size=12",
               "--n_layer=4", "--n_head=4", "--n_embd=128", "--dropout=0.0"]  # and max_iters = lr_decay_iters


def peer_python() -> str:
    """The peers' interpreter: a venv with rnnkit's torch, numpy and requests, made once."""
    python = VENV / "bin" / "python"
    if not python.exists():
        import torch

        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        version = torch.__version__.split("+")[0]
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"torch=={version}", "numpy", "requests"],
                       check=True)
    return str(python)


class Timed:
    """A process whose output lines are kept with the seconds since it started."""

    def __init__(self, command: list[str], cwd: Path, env: dict | None = None) -> None:
        self.started = time.perf_counter()
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.perf_counter() - self.started, line.rstrip("\n")))

    def wait(self, seconds: float | None = None) -> float:
        """Until the process ends, or stop it (SIGINT, then SIGKILL) after ``seconds``; its wall time."""
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join()
        return time.perf_counter() - self.started

    def matches(self, pattern: str) -> list[tuple[float, re.Match]]:
        return [(t, m) for t, line in self.lines if (m := re.search(pattern, line))]


def rnnkit_train(prepared: Path, out: Path, *options: str) -> tuple[dict, list[dict], float]:
    """``rnnkit train`` in its own process: its summary, its record and its wall time."""
    run = Timed([sys.executable, "-m", "rnnkit", "train", str(prepared), "--out", str(out), "--json", *options],
                cwd=ROOT)
    wall = run.wait()
    if run.process.returncode:
        sys.exit("rnnkit train failed:\n" + "\n".join(line for _, line in run.lines[-30:]))
    summary = json.loads(run.lines[-1][1])
    record = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return summary, record, wall


def word_language_model(python: str, work: Path, seconds: float, *options: str) -> dict:
    """The peer on kjv-lm for ``seconds``, with its defaults and ``options`` (say ``--epochs 1 --seed 3``):
    tokens/s and each epoch's evaluation."""
    copy = work / "word_language_model"
    shutil.copytree(PEERS / "word_language_model", copy)
    run = Timed([python, "main.py", "--data", str(DATA / "kjv-lm"), "--epochs", "1000", *options, "--save",
                 str(work / "peer-model.pt")], cwd=copy)
    wall = run.wait(seconds)
    ms = [float(m.group(1)) for _, m in run.matches(r"ms/batch\s+([\d.]+)")]
    if not ms:
        sys.exit("word_language_model printed no timing:\n" + "\n".join(line for _, line in run.lines[-30:]))
    epochs = [{"seconds": t, "epoch": int(m.group(1)), "valid_perplexity": float(m.group(2))}
              for t, m in run.matches(r"end of epoch\s+(\d+).*valid ppl\s+([\d.]+)")]
    batch_tokens = 20 * 35
    return {"tokens_per_second": batch_tokens / (sum(ms) / len(ms) / 1000), "epochs": epochs, "wall": wall}


def nanogpt(python: str, work: Path, max_iters: int, *extra: str) -> dict:
    """nanoGPT's CPU configuration on tinyshakespeare: its evaluations, its timed iterations and wall time."""
    copy = work / "nanoGPT"
    if not copy.exists():
        shutil.copytree(PEERS / "nanoGPT", copy)
        data = copy / "data" / "shakespeare_char"
        shutil.copy(DATA / "tinyshakespeare.txt", data / "input.txt")
        subprocess.run([python, "prepare.py"], cwd=data, check=True, capture_output=True)
    run = Timed([python, "train.py", "config/train_shakespeare_char.py", *NANOGPT_CPU, f"--max_iters={max_iters}",
                 f"--lr_decay_iters={max_iters}", *extra], cwd=copy)
    wall = run.wait()
    evaluations = [{"seconds": t, "iter": int(m.group(1)), "valid_loss": float(m.group(2))}
                   for t, m in run.matches(r"step (\d+): train loss [\d.]+, val loss ([\d.]+)")]
    if run.process.returncode or not evaluations:
        sys.exit("nanoGPT failed:\n" + "\n".join(line for _, line in run.lines[-30:]))
    iterations = {int(m.group(1)): t for t, m in run.matches(r"^iter (\d+): loss")}
    return {"evaluations": evaluations, "iterations": iterations, "wall": wall, "max_iters": max_iters}


def nanogpt_iterations_for(python: str, work: Path, seconds: float) -> int:
    """How many of nanoGPT's CPU iterations (with its evaluation every 250) fill ``seconds`` of wall
    time, from a short timed run: start-up, the time of one iteration, the cost of one evaluation."""
    trial = nanogpt(python, work, 120, "--eval_interval=100")
    at = trial["iterations"]
    per_iteration = (at[90] - at[10]) / 80
    evaluation = max(at[110] - at[90] - 20 * per_iteration, 0.0)  # the gap holds the evaluation at 100
    start = at[0]  # imports, the data and the evaluation at 0
    return int((seconds - start) / (per_iteration + evaluation / 250))


def mean_of_last(evaluations: list[dict], n: int = 6) -> float:
    """nanoGPT's estimates are of 20 batches each: the mean of its last ``n`` (about the whole validation split)."""
    return sum(e["valid_loss"] for e in evaluations[-n:]) / len(evaluations[-n:])


def lower_or_higher(fraction: float) -> str:
    return f"{abs(fraction):.1%} {'lower' if fraction >= 0 else 'higher'}"


def best_before(entries: list[dict], seconds: float) -> dict | None:
    """The evaluation of lowest perplexity among those finished within ``seconds``: the model the
    peer keeps by then (it saves a model only when its validation loss falls)."""
    done = [e for e in entries if e["seconds"] <= seconds]
    return min(done, key=lambda e: e["valid_perplexity"]) if done else None


def equal_time_row(label: str, peer: dict, ours: dict, wall: float) -> list[tuple[str, str, str, str]]:
    """The table's row of the peer's best evaluation finished within rnnkit's ``wall`` time beside
    rnnkit's final one (none if the peer finished no epoch by then)."""
    theirs = best_before(peer["epochs"], wall)
    if not theirs:
        return []
    return [(label, f"{theirs['valid_perplexity']:.1f} (epoch {theirs['epoch']}, {theirs['seconds']:.0f} s)",
             f"{ours['valid_perplexity']:.1f} ({ours['epochs']:.1f} epochs)",
             lower_or_higher(1 - ours['valid_perplexity'] / theirs['valid_perplexity']))]


def after_epoch_one(record: list[dict]) -> dict | None:
    """rnnkit's evaluation at the end of its first epoch, from its metrics record."""
    return next((e for e in record if "valid_loss" in e and e["epoch"] >= 1), None)


def seed_pairs(python: str, words: Path, work: Path, seeds: list[int]) -> list[dict]:
    """(a) again as pairs of one-epoch runs, peer then rnnkit (bf16), both with the same seed, one
    pair after the other: each pair's tokens/s and validation perplexity after the epoch.

    At lr 20 with clipping to 0.25 every step has the same length, so the last bits of float rounding
    grow until two runs that differ in them end the epoch several points apart (the peer's seeds 1–5
    span 126–134), and one run's figure is a draw: the means over seeds compare the tools. The pairs
    also measure speed again, since a shared machine's speed drifts by a quarter or more within
    minutes (a fixed bf16 product measured every 2 s ran at 170–310 GFLOP/s)."""
    pairs = []
    for seed in seeds:
        peer = word_language_model(python, work / f"peer-{seed}", 900, "--epochs", "1", "--seed", str(seed))
        ours, record, _ = rnnkit_train(words, work / f"rnnkit-{seed}", *PEER_SETTINGS, "--softmax", "full",
                                       "--precision", "auto", "--epochs", "1", "--seed", str(seed))
        evaluation = after_epoch_one(record)
        if not peer["epochs"] or not evaluation:
            sys.exit(f"seed {seed}: a one-epoch run ended without its evaluation")
        pairs.append({"seed": seed, "peer_tokens_per_second": peer["tokens_per_second"],
                      "tokens_per_second": ours["tokens_per_second"],
                      "peer_perplexity": peer["epochs"][0]["valid_perplexity"],
                      "perplexity": evaluation["valid_perplexity"]})
    return pairs


def median_speed_row(pairs: list[tuple[float, float]]) -> tuple[str, str, str, str]:
    """The row of (a)'s speed: each pair's ratio, and their median."""
    median = statistics.median(ours / theirs for theirs, ours in pairs)
    each = ", ".join(f"{ours / theirs:.2f}× ({theirs:,.0f} against {ours:,.0f})" for theirs, ours in pairs)
    return (f"(a) tokens/s, peer then rnnkit --precision auto ({AUTO_PRECISION}), {len(pairs)} pairs one after the "
            f"other: {each}", f"{statistics.median(p for p, _ in pairs):,.0f}",
            f"{statistics.median(o for _, o in pairs):,.0f}", f"{median:.2f}× (median of the pairs' ratios)")


def seeds_row(pairs: list[dict]) -> tuple[str, str, str, str]:
    """The row of (a)'s perplexity after epoch 1 over seeds: each seed's pair, and the means."""
    theirs = statistics.mean(p["peer_perplexity"] for p in pairs)
    ours = statistics.mean(p["perplexity"] for p in pairs)
    each = ", ".join(f"{p['seed']}: {p['peer_perplexity']:.1f} against {p['perplexity']:.1f}" for p in pairs)
    return (f"(a) validation perplexity after epoch 1, one-epoch runs with the same seed, peer then rnnkit "
            f"--precision auto, one pair after the other (seed: peer against rnnkit): {each}",
            f"{theirs:.1f} (mean)", f"{ours:.1f} (mean)",
            f"{ours / theirs:.3f} ({'no worse' if ours <= theirs else 'worse'})")


def prepare_corpora(work: Path) -> tuple[Path, Path]:
    import rnnkit
    from rnnkit.data.batching import stream_tokens

    words = rnnkit.prepare(DATA / "kjv-lm" / "train.txt", work / "kjv-lm", valid_file=DATA / "kjv-lm" / "valid.txt",
                           test_file=DATA / "kjv-lm" / "test.txt", tokenizer="whitespace", lines=True, vocab_size=0,
                           unk_token="<unk>", lowercase=False, progress=False)
    # Perplexities compare only over the same tokens: the peer predicts every word and each line's <eos>.
    predicted = len(stream_tokens(words, "valid")) - 1
    if predicted != VALID_WORDS + VALID_LINES:
        sys.exit(f"rnnkit predicts {predicted:,} validation tokens of kjv-lm, the peer {VALID_WORDS + VALID_LINES:,}")
    chars = rnnkit.prepare(DATA / "tinyshakespeare.txt", work / "shakespeare-char", level="char",
                           valid_fraction=0.1, test_fraction=0, split_tail=True, progress=False)
    return words.path, chars.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few minutes: shorter budgets")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--parts", default="abc", help="which comparisons to run (default: abc, all of them)")
    args = parser.parse_args()
    if not PEERS.exists() or not DATA.exists():
        print(f"skipped: {PEERS} or {DATA} is absent (this benchmark runs the peers from ../shared)")
        return
    same_seconds, budgets, nano_iters, char_budget = ((130, [150], 250, 150) if args.quick
                                                      else (240, [300, 600], 2000, 600))
    seeds = [1] if args.quick else [1, 2, 3, 4, 5]  # (a)'s pairs of one-epoch runs
    python = peer_python()
    rows: list[tuple[str, str, str, str]] = []
    results: dict = {"quick": args.quick}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        words, chars = prepare_corpora(work)

        if "a" in args.parts:
            # (a) the peer's model and settings in both tools, the same wall time
            peer = word_language_model(python, work / "a", same_seconds)
            peer_epoch1 = peer["epochs"][0] if peer["epochs"] else None
            results["a"] = {"peer": peer}
            for softmax, precision in (("full", "auto"), ("full", "fp32"), ("adaptive", "auto")):
                ours, record, wall = rnnkit_train(words, work / f"a-rnnkit-{softmax}-{precision}", *PEER_SETTINGS,
                                                  "--epochs", "1000", "--softmax", softmax, "--precision", precision,
                                                  "--max-time", str(same_seconds))
                ours_epoch1 = after_epoch_one(record)
                variant = f"--softmax {softmax} --precision {precision}" + (f" ({AUTO_PRECISION})" if precision == "auto"
                                                                            else "")
                results["a"][variant] = ours
                rows.append((f"(a) peer's model and settings, tokens/s; rnnkit {variant}",
                             f"{peer['tokens_per_second']:,.0f}", f"{ours['tokens_per_second']:,.0f}",
                             f"{ours['tokens_per_second'] / peer['tokens_per_second']:.2f}×"))
                if peer_epoch1 and ours_epoch1:
                    rows.append((f"(a) validation perplexity after epoch 1; {variant}",
                                 f"{peer_epoch1['valid_perplexity']:.1f}", f"{ours_epoch1['valid_perplexity']:.1f}",
                                 f"{ours_epoch1['valid_perplexity'] / peer_epoch1['valid_perplexity']:.2f}"))
                rows += equal_time_row(f"(a) validation perplexity within {wall:.0f} s; {variant}", peer, ours, wall)
                if precision == "auto" and softmax == "full":  # the run right after the peer's: the first pair
                    pairs = [(peer["tokens_per_second"], ours["tokens_per_second"])]
            by_seed = seed_pairs(python, words, work / "a-seeds", seeds)
            pairs += [(p["peer_tokens_per_second"], p["tokens_per_second"]) for p in by_seed]
            rows += [median_speed_row(pairs), seeds_row(by_seed)]
            results["a"]["pairs"], results["a"]["seeds"] = pairs, by_seed

        if "b" in args.parts:
            # (b) the peer's defaults against rnnkit's, validation perplexity at equal wall time
            peer = word_language_model(python, work / "b", max(budgets) + 30)
            results["b"] = {"peer": peer, "rnnkit": {}}
            for budget in budgets:
                ours, _, wall = rnnkit_train(words, work / f"b-rnnkit-{budget}", "--max-time", str(budget))
                results["b"]["rnnkit"][budget] = {**ours, "wall": wall}
                rows += equal_time_row(f"(b) defaults, validation perplexity within {wall:.0f} s", peer, ours, wall)

        if "c" in args.parts:
            # (c) characters: nanoGPT's CPU configuration as its README runs it, then rnnkit for its wall time;
            # then both for the same 10 minutes, nanoGPT's iterations (and their decay) sized to fill them
            nano = nanogpt(python, work / "c", nano_iters)
            final = nano["evaluations"][-1]
            ours, _, wall = rnnkit_train(chars, work / "c-rnnkit-readme", "--max-time", f"{final['seconds']:.0f}")
            results["c"] = {"readme": {"peer": nano, "rnnkit": {**ours, "wall": wall}}}
            rows.append((f"(c) characters, validation nats/char, nanoGPT's README run ({nano_iters} iterations)",
                         f"{final['valid_loss']:.3f} (iter {final['iter']}, {final['seconds']:.0f} s)",
                         f"{ours['valid_loss']:.3f} ({wall:.0f} s wall)", f"{final['valid_loss'] - ours['valid_loss']:+.3f}"))
            sized = nanogpt_iterations_for(python, work / "c", char_budget)
            nano = nanogpt(python, work / "c", sized)
            theirs = mean_of_last(nano["evaluations"])
            ours, _, wall = rnnkit_train(chars, work / "c-rnnkit-same", "--max-time", str(char_budget))
            results["c"]["same_time"] = {"peer": nano, "peer_mean_of_last": theirs, "rnnkit": {**ours, "wall": wall}}
            lead = theirs - ours["valid_loss"]
            rows.append((f"(c) characters, {char_budget} s each: nanoGPT {sized} iterations (mean of its last 6 "
                         "estimates), rnnkit `--max-time`",
                         f"{theirs:.3f} ({nano['wall']:.0f} s wall)", f"{ours['valid_loss']:.3f} ({wall:.0f} s wall)",
                         f"{lead:+.3f} nats lower (goals: rnnkit ≤ 1.38: {'met' if ours['valid_loss'] <= 1.38 else 'not met'}"
                         f"; lead ≥ 0.12: {'met' if lead >= 0.12 else 'not met'})"))

    print("\n| comparison | peer | rnnkit | ratio |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\ncommands: peer (a, b) `python main.py --data kjv-lm --epochs 1000` (its defaults); "
          f"rnnkit (a) `rnnkit train kjv-lm --out M {' '.join(PEER_SETTINGS)} --epochs 1000|1 --softmax full|adaptive --precision fp32|auto "
          f"--max-time {same_seconds}`; "
          f"(b) `rnnkit train kjv-lm --out M --max-time T`; (c) nanoGPT `python train.py "
          f"config/train_shakespeare_char.py {' '.join(NANOGPT_CPU)} --max_iters=N --lr_decay_iters=N` (N = {nano_iters}, "
          f"then sized to {char_budget} s), "
          f"rnnkit `rnnkit train shakespeare-char --out M --max-time T` (prepared with --level char --valid-fraction 0.1 "
          f"--test-fraction 0 --split-tail)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
