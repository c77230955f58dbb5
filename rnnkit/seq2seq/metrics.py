"""How close outputs are to their references: character error rate, word accuracy, BLEU.

* CER: character edits (Levenshtein) over all outputs, divided by the references' characters.
* Word accuracy: the share of reference words (split at spaces) that the output holds in a
  word-level alignment (the Levenshtein alignment's matches) — 1 when every word came out right.
* BLEU: sacrebleu's corpus BLEU (its default 13a tokenisation), on a 0–100 scale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from rnnkit.errors import RnnkitError


def character_errors(outputs: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per pair, the character edits between output and reference."""
    from rapidfuzz.distance import Levenshtein

    return np.array([Levenshtein.distance(o, r) for o, r in zip(outputs, references)], dtype=np.int64)


def word_matches(output: str, reference: str) -> int:
    from rapidfuzz.distance import Levenshtein

    return sum(op.src_end - op.src_start for op in Levenshtein.opcodes(reference.split(), output.split())
               if op.tag == "equal")


def bleu(outputs: Sequence[str], references: Sequence[str]) -> float:
    try:
        import sacrebleu
    except ImportError:
        raise RnnkitError("BLEU needs sacrebleu: pip install 'rnnkit[seq2seq]'") from None
    return float(sacrebleu.corpus_bleu(list(outputs), [list(references)]).score)


def scores(outputs: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """``cer``, ``word_accuracy`` and ``bleu`` of outputs against references."""
    if len(outputs) != len(references) or not references:
        raise RnnkitError("scoring needs one output per reference, and at least one")
    characters = sum(len(r) for r in references)
    words = sum(len(r.split()) for r in references)
    return {"cer": float(character_errors(outputs, references).sum() / characters),
            "word_accuracy": sum(word_matches(o, r) for o, r in zip(outputs, references)) / words,
            "bleu": bleu(outputs, references)}


def cer_by_length(sources: Sequence[str], outputs: Sequence[str], references: Sequence[str],
                  width: int = 20) -> list[dict[str, float]]:
    """CER in buckets of source length (``width`` characters each): where long inputs hurt."""
    lengths = np.array([len(s) for s in sources])
    errors = character_errors(outputs, references)
    ref_chars = np.array([len(r) for r in references])
    rows = []
    for low in range(0, int(lengths.max()) + 1, width):
        chosen = (lengths >= low) & (lengths < low + width)
        if chosen.any():
            rows.append({"from": low, "to": low + width - 1, "pairs": int(chosen.sum()),
                         "cer": float(errors[chosen].sum() / ref_chars[chosen].sum())})
    return rows


def loops(sources: Sequence[str], outputs: Sequence[str], n: int = 3, times: int = 4) -> int:
    """How many outputs repeat a character ``n``-gram ``times`` times or more that their source
    does not repeat (holds once at most): the mark of a decoder caught in a loop (``ne ne ne ne``)."""
    def grams(text: str) -> Counter[str]:
        return Counter(text[i:i + n] for i in range(len(text) - n + 1))

    looping = 0
    for source, output in zip(sources, outputs):
        mine, theirs = grams(output), grams(source)
        looping += any(count >= times and theirs[g] <= 1 for g, count in mine.items())
    return looping
