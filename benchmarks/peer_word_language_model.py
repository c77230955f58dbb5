"""Benchmark: rnnkit against PyTorch's examples/word_language_model on kjv-lm (issue 6, part 4).

    python benchmarks/peer_word_language_model.py [--same-seconds 120] [--budget 600] [--json]

The peer's figures are inputs (its code is not part of rnnkit); the defaults are the ones
measured for it on kjv-lm: on this kind of 2-core CPU 6,100 tokens/s and about 80 validation
perplexity after 10 minutes (about 5.5 epochs); on an H100 119k tokens/s and, by epoch,
129.7 / 101.2 / 90.6 / 84.9 / 80.9 / 78.8 (45 s in all).

Two runs of the real `rnnkit train` command on the same data, prepared the way the peer reads it
(`prepare --tokenizer whitespace --lines --vocab-size 0 --unk-token '<unk>'`):

(a) the peer's own model and settings — LSTM 2 × 200, embedding 200, untied, dropout 0.2,
    stream mode with bptt 35 and batch 20, SGD at lr 20, clip 0.25 — for ``--same-seconds``:
    training tokens per second against the peer's;
(b) rnnkit's defaults, no model or optimizer option: `rnnkit train PREPARED --out M --max-time
    BUDGET`: the validation perplexity against the peer's after the same wall-clock budget.

First it checks that rnnkit predicts the same validation tokens as the peer (70,846 words and
3,110 line ends): perplexities compare only over the same token stream. With CUDA present, both
runs are repeated on the GPU (budget ``--gpu-budget``, default 45 s: the peer's 6 epochs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kjv-lm"
VALID_WORDS, VALID_LINES = 70_846, 3_110
PEER_SETTINGS = ["--cell", "lstm", "--layers", "2", "--hidden", "200", "--embedding", "200", "--no-tie",
                 "--dropout", "0.2", "--mode", "stream", "--bptt", "35", "--batch-size", "20",
                 "--optimizer", "sgd", "--lr", "20", "--clip", "0.25", "--epochs", "1000"]


def rnnkit_train(prepared: Path, out: Path, *options: str) -> dict:
    command = [sys.executable, "-m", "rnnkit", "train", str(prepared), "--out", str(out), "--json", *options]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--same-seconds", type=float, default=120.0, help="(a): seconds of the peer's settings")
    parser.add_argument("--budget", type=float, default=600.0, help="(b): seconds of rnnkit's defaults on the CPU")
    parser.add_argument("--gpu-budget", type=float, default=45.0)
    parser.add_argument("--peer-cpu-tokens-per-second", type=float, default=6_100)
    parser.add_argument("--peer-cpu-perplexity", type=float, default=80.0, help="the peer's, after --budget on CPU")
    parser.add_argument("--peer-gpu-tokens-per-second", type=float, default=119_000)
    parser.add_argument("--peer-gpu-perplexity", type=float, default=78.8, help="the peer's, after --gpu-budget")
    parser.add_argument("--skip-same", action="store_true", help="run (b) only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (DATA / "train.txt").exists():
        sys.exit(f"{DATA} not found: this benchmark needs ../shared/data/kjv-lm")
    import torch

    import rnnkit
    from rnnkit.data.batching import stream_tokens

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    report: dict = {"device_names": {"cuda": torch.cuda.get_device_name()} if "cuda" in devices else {}, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        prepared = rnnkit.prepare(DATA / "train.txt", Path(tmp) / "kjv-lm", valid_file=DATA / "valid.txt",
                                  test_file=DATA / "test.txt", tokenizer="whitespace", lines=True, vocab_size=0,
                                  unk_token="<unk>", lowercase=False)
        predicted = len(stream_tokens(prepared, "valid")) - 1
        if predicted != VALID_WORDS + VALID_LINES:
            sys.exit(f"rnnkit predicts {predicted:,} validation tokens, the peer {VALID_WORDS + VALID_LINES:,}")
        report["valid_tokens"] = predicted
        report["vocabulary"] = len(prepared.vocab)
        for device in devices:
            peer_speed = args.peer_cpu_tokens_per_second if device == "cpu" else args.peer_gpu_tokens_per_second
            peer_ppl = args.peer_cpu_perplexity if device == "cpu" else args.peer_gpu_perplexity
            budget = args.budget if device == "cpu" else args.gpu_budget
            if not args.skip_same:
                same = rnnkit_train(prepared.path, Path(tmp) / f"same-{device}", *PEER_SETTINGS, "--device", device,
                                    "--max-time", str(args.same_seconds), "--engine", "torch")
                report["runs"].append({"run": "peer settings", "device": device, "seconds": same["seconds"],
                                       "tokens_per_second": round(same["tokens_per_second"]),
                                       "peer_tokens_per_second": peer_speed,
                                       "speed_ratio": round(same["tokens_per_second"] / peer_speed, 2),
                                       "valid_perplexity": round(same["valid_perplexity"], 2),
                                       "epochs": same["epochs"]})
            defaults = rnnkit_train(prepared.path, Path(tmp) / f"defaults-{device}", "--max-time", str(budget),
                                    *(["--device", device] if device != "cpu" else ["--device", "cpu"]))
            report["runs"].append({"run": "rnnkit defaults", "device": device, "seconds": defaults["seconds"],
                                   "budget": budget, "tokens_per_second": round(defaults["tokens_per_second"]),
                                   "valid_perplexity": round(defaults["valid_perplexity"], 2),
                                   "peer_valid_perplexity": peer_ppl, "epochs": defaults["epochs"],
                                   "engine": defaults["engine"]})
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"kjv-lm: vocabulary {report['vocabulary']:,}, {report['valid_tokens']:,} validation tokens (as the peer)")
    for r in report["runs"]:
        if r["run"] == "peer settings":
            print(f"  {r['device']:>4}  peer's model and settings: rnnkit {r['tokens_per_second']:,} tokens/s, "
                  f"peer {r['peer_tokens_per_second']:,.0f}: {r['speed_ratio']:.2f}x  "
                  f"(valid perplexity {r['valid_perplexity']} after {r['epochs']:.2f} epochs)")
        else:
            print(f"  {r['device']:>4}  defaults, {r['budget']:.0f} s: rnnkit valid perplexity {r['valid_perplexity']} "
                  f"({r['epochs']:.2f} epochs, {r['tokens_per_second']:,} tokens/s), peer {r['peer_valid_perplexity']}")


if __name__ == "__main__":
    main()
