"""Can the next line tell how a line ends? A classifier of the modern edition's closing punctuation.

    python benchmarks/seq2seq_line_ends.py MODEL

``benchmarks/seq2seq_errors.py`` finds that the closing punctuation of a line (what follows its
last letter) is worth 3.7 points of word accuracy at most. Whether a sentence ends there is often
said by the next line of the play, which the model never sees. This fits a logistic regression
(scikit-learn) that predicts the reference's closing punctuation from the source line's end and
first word, and the next source line's first words, their case and length:

* fitted on the training pairs (74k lines; the model's outputs are not among its features);
* fitted on the validation pairs with the model's own closing punctuation as features too;

and prints, on the test pairs, how often each is right beside the model, how often one of the
model and the first is, and the scores of the model's outputs with the second's closing
punctuation in place.
"""

from __future__ import annotations

import argparse

import numpy as np
from seq2seq_errors import closing

from rnnkit.data.corpora import get
from rnnkit.seq2seq import load_seq2seq
from rnnkit.seq2seq.metrics import scores


def with_next(split: str) -> list[tuple[str, str, str]]:
    """Each (source, reference, next source line of the same play, or "") of a split, in order."""
    rows = [line.split("\t") for line in (get("shakespeare-folio") / f"{split}.tsv").read_text(encoding="utf-8")
            .splitlines() if line.strip()]
    return [(s.strip(), t.strip(), rows[i + 1][0].strip() if i + 1 < len(rows) and rows[i + 1][2:] == rest else "")
            for i, (s, t, *rest) in enumerate(rows)]


def features(source: str, following: str, output: str | None) -> dict[str, float]:
    body, end = closing(source)
    words, after = body.split(), following.split()
    named = {"end": end, "last": words[-1].lower() if words else "", "first": words[0].lower() if words else "",
             "length": str(min(len(words), 12)), "next": after[0].lower().strip(",.;:?!") if after else "<none>",
             "next2": after[1].lower() if len(after) > 1 else "", "next_length": str(min(len(after), 6)),
             "next_capital": str(bool(after) and after[0][:1].isupper())}
    if output is not None:
        mine = closing(output)[1]
        named.update({"output_end": mine, "both_ends": f"{end}|{mine}"})
    return {f"{k}={v}": 1.0 for k, v in named.items()}


def fit(rows: list[dict[str, float]], labels: list[str]):
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(DictVectorizer(), LogisticRegression(C=0.3, max_iter=3000)).fit(rows, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    args = parser.parse_args()
    model = load_seq2seq(args.model)
    train, valid, test = (with_next(split) for split in ("train", "valid", "test"))
    valid_out, test_out = (model.translate([s for s, _, _ in rows]) for rows in (valid, test))
    wanted = np.array([closing(t)[1] for _, t, _ in test])
    mine = np.array([closing(o)[1] for o in test_out])

    lines = fit([features(s, n, None) for s, _, n in train], [closing(t)[1] for _, t, _ in train])
    from_lines = lines.predict([features(s, n, None) for s, _, n in test])
    joint = fit([features(s, n, o) for (s, _, n), o in zip(valid, valid_out)], [closing(t)[1] for _, t, _ in valid])
    from_joint = joint.predict([features(s, n, o) for (s, _, n), o in zip(test, test_out)])

    print(f"closing punctuation right, {len(test):,} test lines:")
    print(f"  the model                                        {np.mean(mine == wanted):.3f}")
    print(f"  classifier of the training lines, next line seen {np.mean(from_lines == wanted):.3f}")
    print(f"  either of those two                              {np.mean((mine == wanted) | (from_lines == wanted)):.3f}")
    print(f"  classifier of the validation lines and outputs   {np.mean(from_joint == wanted):.3f}")
    references = [t for _, t, _ in test]
    mended = [closing(o)[0] + end for o, end in zip(test_out, from_joint)]
    for name, texts in (("the model's outputs", test_out), ("their closing punctuation the classifier's", mended)):
        got = scores(texts, references)
        print(f"{name:<42} CER {got['cer']:.4f}  word acc {got['word_accuracy']:.4f}  BLEU {got['bleu']:.1f}")


if __name__ == "__main__":
    main()
