"""How a language model reads text from a zero state: the validation split read as one stream,
as `rnnkit evaluate` reads it (ten parts side by side, each from a zero state), and as many short
parts, each from a zero state, with the share of those parts the model never recovers in.

A tanh RNN trained a few hundred steps can hold two regimes: from a zero state at some places of
the text its state falls into one where every prediction is confidently wrong, and stays there
(chapter 3 of the tutorial). The gated cells do not. Usage:

    python benchmarks/zero_state.py plays-rnn plays-gru plays-lstm --data shakespeare
"""

from __future__ import annotations

import argparse

import numpy as np

from rnnkit.data.corpus import PreparedCorpus
from rnnkit.lm.evaluate import stream_tokens
from rnnkit.lm.model import load

STUCK = 8.0  # nats per word: near an untrained model's log(8,000) = 9.0, thirty times the perplexity of a working one


def part_losses(engine, tokens: np.ndarray, starts: np.ndarray, length: int, chunk: int) -> np.ndarray:
    """Mean loss of each part (rows) over each chunk of its words (columns), from a zero state."""
    x = np.stack([tokens[s:s + length] for s in starts])
    y = np.stack([tokens[s + 1:s + length + 1] for s in starts])
    h, losses = engine.initial_state(len(starts)), []
    for c in range(0, length, chunk):
        log_probs, _, h = engine.observe(x[:, c:c + chunk], y[:, c:c + chunk], h)
        losses.append(-np.asarray(log_probs, dtype=np.float64).mean(axis=1))
    return np.stack(losses, axis=1)


def _mean_loss(engine, tokens: np.ndarray, window: int = 256) -> float:
    """Mean loss per word over the whole stream read once from a zero state."""
    h, total = engine.initial_state(1), 0.0
    for c in range(0, len(tokens) - 1, window):
        x, y = tokens[None, c:min(c + window, len(tokens) - 1)], tokens[None, c + 1:c + window + 1]
        log_probs, _, h = engine.observe(x, y, h)
        total -= float(np.asarray(log_probs, dtype=np.float64).sum())
    return total / (len(tokens) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True, help="a prepared corpus (its validation split is read)")
    parser.add_argument("--parts", type=int, default=60)
    parser.add_argument("--length", type=int, default=1000, help="words in each part")
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    corpus = PreparedCorpus.open(args.data)
    stream = stream_tokens(corpus, "valid")
    tokens = np.asarray(stream[np.arange(len(stream))], dtype=np.int64)
    starts = np.linspace(0, len(tokens) - args.length - 2, args.parts).astype(np.int64)
    print(f"{'model':<24} {'one stream':>11} {'10 parts':>9}  parts from a zero state lost in every chunk "
          f"(>{STUCK:g} nats/word), of {args.parts}")
    for path in args.models:
        model = load(path, cache=0)
        one = float(np.exp(_mean_loss(model.engine, tokens)))
        ten = model.evaluate(corpus, split="valid", mode="stream")["perplexity"]
        losses = part_losses(model.engine, tokens, starts, args.length, args.chunk)
        lost = int((losses > STUCK).all(axis=1).sum())
        print(f"{path:<24} {one:>11.2f} {ten:>9.2f}  {lost:>3}  (median part {np.median(losses):.2f} nats/word)")


if __name__ == "__main__":
    main()
