"""What a model must beat: copying the source, and a lexicon of word spellings.

The lexicon maps each source word to the target spelling it most often became in the training
pairs, read off the pairs whose two sides have as many words (position by position: in the Folio
corpus most lines keep their words and change their spelling); unseen words are copied.
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

    def __call__(self, sources: Sequence[str]) -> list[str]:
        return [" ".join(self.spelling.get(word, word) for word in source.split()) for source in sources]
