"""Which attention window decodes a Folio → modern spelling model best, chosen on validation and
then checked on the test split.

    python benchmarks/seq2seq_window.py MODEL [MODEL ...] [--windows 1,3 2,4 3,10 ...]

For each model: the validation CER of greedy outputs, per window (``none``: unwindowed), on the
lines of 55 characters or more and on the first 1,500 of 20 to 59; then the test split as
``rnnkit seq2seq evaluate`` scores it, with the first window given and with the last (the new
choice last), and the longest lines' CER over the mean of the 20–59 buckets'.
"""

from __future__ import annotations

import argparse

from seq2seq_folio import long_over_middle

from rnnkit.data.corpora import get
from rnnkit.seq2seq import evaluate_seq2seq, load_seq2seq
from rnnkit.seq2seq.data import read_split
from rnnkit.seq2seq.metrics import scores


def window(text: str) -> tuple[int, int] | None:
    return None if text == "none" else tuple(int(n) for n in text.split(","))  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--windows", nargs="+", type=window, default=[(3, 10), None, (1, 3), (1, 4), (2, 6),
                                                                     (6, 20), (2, 4)],
                        help="before,after pairs, or none; the test split compares the first and the last")
    args = parser.parse_args()
    data = get("shakespeare-folio")
    valid = read_split(data, "valid", 0)
    groups = {"55+": [i for i, s in enumerate(valid.sources) if len(s) >= 55],
              "20-59": [i for i, s in enumerate(valid.sources) if 20 <= len(s) < 60][:1500]}
    for path in args.models:
        model = load_seq2seq(path)
        for name, chosen in groups.items():
            sources, targets = [valid.sources[i] for i in chosen], [valid.targets[i] for i in chosen]
            cells = [f"{w}: {scores(model.translate(sources, window=w), targets)['cer']:.4f}" for w in args.windows]
            print(f"{path}  valid {name} ({len(chosen):,} lines)  " + "  ".join(cells), flush=True)
        for w in (args.windows[0], args.windows[-1]):
            report = evaluate_seq2seq(model, data, "test", window=w)
            m = report["model"]
            print(f"{path}  test {w}: CER {m['cer']:.4f}  word acc {m['word_accuracy']:.4f}  BLEU {m['bleu']:.1f}  "
                  f"loops {report['loops']}  60-79 over the 20-59 mean "
                  f"{long_over_middle(report['by_length']['model']):.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
