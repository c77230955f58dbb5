"""Does the next line help? Folio → modern spelling with and without a glimpse of what follows.

    python benchmarks/seq2seq_next_line.py [--seconds 300] [--chars 24] [--split valid] [--limit 2000]

A line's closing punctuation (whether the sentence ends there) is often said by the next line,
which the model never sees (``benchmarks/seq2seq_errors.py`` measures what it costs). This writes
a copy of the Folio pairs whose sources end with `` ⏎ `` and the first ``--chars`` characters of
the next source line of the same play (targets unchanged), then trains the default encoder–decoder
on each copy for the same time, one after the other, and scores both on the same pairs. An
experiment, not a feature: ``rnnkit seq2seq`` reads one line at a time.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rnnkit.data.corpora import get
from rnnkit.seq2seq import evaluate_seq2seq, load_seq2seq, train_seq2seq

MARK = " \u23ce "


def with_next_line(tsv: Path, out: Path, chars: int) -> None:
    """``tsv``'s pairs, each source followed by the start of the next source of its play."""
    rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = []
    for i, (source, target, *rest) in enumerate(rows):
        same_play = i + 1 < len(rows) and rows[i + 1][2:] == rest
        following = rows[i + 1][0][:chars] if same_play else ""
        lines.append("\t".join([(source + MARK + following).rstrip(), target, *rest]))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--chars", type=int, default=24, help="characters of the next line shown")
    parser.add_argument("--split", default="valid", choices=["valid", "test"])
    parser.add_argument("--limit", type=int, default=2000, help="pairs scored, drawn at random (seeded)")
    args = parser.parse_args()
    folio = get("shakespeare-folio")
    with tempfile.TemporaryDirectory() as tmp:
        glimpse = Path(tmp, "next-line")
        glimpse.mkdir()
        for split in ("train", "valid", "test"):
            with_next_line(folio / f"{split}.tsv", glimpse / f"{split}.tsv", args.chars)
        for name, data in (("one line", folio), (f"+ next {args.chars} characters", glimpse)):
            out = Path(tmp, name.replace(" ", "-"))
            summary = train_seq2seq(data, out, max_time=args.seconds, log=lambda _: None, progress=False)
            report = evaluate_seq2seq(load_seq2seq(out), data, args.split, limit=args.limit)
            m = report["model"]
            print(f"{name:<26} CER {m['cer']:.4f}  word acc {m['word_accuracy']:.4f}  BLEU {m['bleu']:5.1f}  "
                  f"loops {report['loops']}  |  {summary['epochs']:.2f} epochs  "
                  f"{summary['tokens_per_second']:,.0f} tokens/s", flush=True)
    print(f"{args.split}: {report['pairs']:,} pairs, {args.seconds:.0f} s of training each")


if __name__ == "__main__":
    main()
