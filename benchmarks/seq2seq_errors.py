"""What a Folio → modern spelling model still gets wrong, sorted by what could be won.

    python benchmarks/seq2seq_errors.py MODEL [--sample 200] [--seed 0] [--examples 4]

Decodes the held-out plays (``rnnkit data get shakespeare-folio``'s test split) with ``MODEL``,
draws ``--sample`` of the lines whose output differs from the reference (seeded), and sorts each
by a stated rule, in this order:

* **punctuation/case**: output and reference are the same words once lowercased and stripped of
  punctuation — the modern edition's pointing and capitals, which the Folio line does not carry;
* **editorial**: the reference is not the source's words respelt — words added, dropped or
  replaced by another word (aligned word pairs less than half alike, by normalised edit
  similarity, or a different number of words) — which no spelling model can predict;
* **spelling**: the rest: the same words as the reference, some spelt otherwise.

The sort is a rule, not a reader; the examples it prints show what each kind looks like. Before
it, the share of the differing outputs that are right but for their closing punctuation (what
follows the line's last letter), and the scores with each line's closing punctuation taken from its
reference: what a model that knew how the sentence goes on (the next line) could win at most there.
Last, CER by source length for every line and for the English lines alone: a line with three or
more French function words (``FRENCH``) is counted French — Henry V's French scenes, prose whose
long lines no model of the English Folio has learnt to modernise.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import numpy as np
from seq2seq_folio import long_over_middle

from rnnkit.data.corpora import get
from rnnkit.seq2seq import load_seq2seq
from rnnkit.seq2seq.data import read_split
from rnnkit.seq2seq.evaluate import within_limits
from rnnkit.seq2seq.metrics import cer_by_length, scores

KINDS = ("spelling", "punctuation/case", "editorial")
FRENCH = frozenset("le la les de des du d' vous ie je pour ma mon est et que qui nous ne pas vn en il sont ce ces "
                   "moy suis".split())


def words(text: str) -> list[str]:
    """Lowercased words without punctuation (apostrophes inside a word kept: ``'tis``, ``o'er``)."""
    return [w for w in (re.sub(r"[^\w']+", "", w).strip("'").lower() for w in text.split()) if w]


def alike(a: str, b: str) -> float:
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.normalized_similarity(a, b)


def closing(text: str) -> tuple[str, str]:
    """A line split after its last letter or digit: ``("Long live the king", "!")``."""
    end = len(text.rstrip("".join(c for c in set(text) if not c.isalnum())))
    return text[:end], text[end:]


def french(text: str) -> bool:
    return sum(w.strip(",.;:?!").lower() in FRENCH for w in text.split()) >= 3


def by_length_row(name: str, sources: list[str], outputs: list[str], references: list[str]) -> str:
    buckets = cer_by_length(sources, outputs, references)
    cells = "  ".join(f"{b['from']}-{b['to']}: {b['cer']:.4f} ({b['pairs']:,})" for b in buckets)
    return f"  {name:<14} {cells}  |  60-79 over the 20-59 mean {long_over_middle(buckets):.2f}"


def kind_of(source: str, output: str, reference: str) -> str:
    if words(output) == words(reference):
        return "punctuation/case"
    read, wanted = words(source), words(reference)
    if len(read) != len(wanted) or any(alike(a, b) < 0.5 for a, b in zip(read, wanted)):
        return "editorial"
    return "spelling"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=4, help="lines shown of each kind")
    args = parser.parse_args()
    model = load_seq2seq(args.model)
    pairs, _ = within_limits(model, read_split(get("shakespeare-folio"), "test"))
    outputs = model.translate(pairs.sources)
    wrong = [i for i, (o, r) in enumerate(zip(outputs, pairs.targets)) if o != r]
    chosen = np.random.default_rng(args.seed).choice(wrong, size=min(args.sample, len(wrong)), replace=False)
    kinds = {int(i): kind_of(pairs.sources[i], outputs[i], pairs.targets[i]) for i in chosen}
    counts = Counter(kinds.values())
    print(f"{len(wrong):,} of {len(pairs):,} test outputs differ from their reference")
    ends = sum(closing(outputs[i])[0] == closing(pairs.targets[i])[0] for i in wrong)
    print(f"  {ends:,} of them ({ends / len(wrong):.0%}) only in their closing punctuation")
    mended = [closing(o)[0] + closing(r)[1] for o, r in zip(outputs, pairs.targets)]
    for name, texts in (("as decoded", outputs), ("closing punctuation the reference's", mended)):
        got = scores(texts, pairs.targets)
        print(f"  {name:<36} CER {got['cer']:.4f}  word acc {got['word_accuracy']:.4f}  BLEU {got['bleu']:.1f}")
    english = [i for i, source in enumerate(pairs.sources) if not french(source)]
    print(f"CER by source length (pairs), {len(pairs) - len(english)} lines French by the rule:")
    print(by_length_row("every line", pairs.sources, outputs, pairs.targets))
    print(by_length_row("English lines", *([texts[i] for i in english] for texts in (pairs.sources, outputs,
                                                                                     pairs.targets))))
    print(f"{len(chosen)} of the differing outputs drawn:")
    for kind in KINDS:
        print(f"  {kind:<17} {counts[kind]:>4}  ({counts[kind] / len(chosen):.0%})")
    for kind in KINDS:
        print(f"\n{kind}:")
        for i in [i for i, k in kinds.items() if k == kind][: args.examples]:
            print(f"  source    {pairs.sources[i]}\n  output    {outputs[i]}\n  reference {pairs.targets[i]}\n")


if __name__ == "__main__":
    main()
