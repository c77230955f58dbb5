"""What a model must beat: copying the source, and a lexicon of word spellings; and the two
together.

The lexicon maps each source word to the target spelling it most often became in the training
pairs, read off the pairs whose two sides have as many words (position by position: in the Folio
corpus most lines keep their words and change their spelling); unseen words are copied.

``Lexicon.correct`` joins it to a model, as Bollmann (2019) recommends for historical spelling: a
word the lexicon knows well (seen ``min_count`` times, spelt one way in ``min_share`` of them)
takes the lexicon's spelling; every other word keeps the model's. Words are matched by position,
so an output with as many words as its source; another output is kept whole.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from rnnkit.seq2seq.data import Pairs


def copy(sources: Sequence[str]) -> list[str]:
    return list(sources)


class Lexicon:
    def __init__(self, pairs: Pairs) -> None:
        seen: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for source, target in zip(pairs.sources, pairs.targets):
            a, b = source.split(), target.split()
            if len(a) == len(b):
                for word, spelling in zip(a, b):
                    seen[word][spelling] += 1
        self.spelling = {word: counts.most_common(1)[0][0] for word, counts in seen.items()}
        self.support = {word: (sum(counts.values()), counts.most_common(1)[0][1] / sum(counts.values()))
                        for word, counts in seen.items()}  # times seen, and the top spelling's share

    def __call__(self, sources: Sequence[str]) -> list[str]:
        return [" ".join(self.spelling.get(word, word) for word in source.split()) for source in sources]

    def correct(self, sources: Sequence[str], outputs: Sequence[str], min_count: int = 2,
                min_share: float = 0.9) -> list[str]:
        """The model's ``outputs``, each word the lexicon knows confidently spelt its way."""
        def confident(word: str) -> bool:
            count, share = self.support.get(word, (0, 0.0))
            return count >= min_count and share >= min_share

        corrected = []
        for source, output in zip(sources, outputs):
            a, b = source.split(), output.split()
            if len(a) == len(b):
                b = [self.spelling[w] if confident(w) else mine for w, mine in zip(a, b)]
            corrected.append(" ".join(b) if len(a) == len(b) else output)
        return corrected
