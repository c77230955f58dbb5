"""Hard negatives: the wrong responses a chatbot is tempted by, mined once before training.

In-batch negatives are random responses, so a ranker never learns that a context's own words are
a wrong answer: the responses that share the most words with a context score highest, and the
bot echoes (Fedorenko et al. 2017, whose remedy this is). Each training context gets as hard
negatives

* its own turns (the person's last one, the echo; the bot's before it, a loop on its own answer),
* the ``NEIGHBOURS`` responses nearest it in words: the best of TF-IDF's cosine among ``POOL``
  training responses drawn at random (the whole repository costs minutes; a sample, seconds),

less any turn with the true response's very words (a context whose answer is "hi" may hold a
"hi") and any neighbour that near-duplicates it (``similar``: "yeah!" is no wrong answer where
"yeah" is the right one). Each step, every context of the batch brings ``--hard-negatives`` of its
own, drawn at random, into the softmax beside the batch's responses (as DPR's mined negatives
join its in-batch ones, Karpukhin et al. 2020).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rnnkit.rank.build import EOT
from rnnkit.rank.similar import NEAR, similarity, words

POOL = 4096  # responses searched for each context's lexical neighbours
NEIGHBOURS = 2
_CHUNK = 1024  # contexts scored against the pool at once: a dense (1024, POOL) block


@dataclass
class HardNegatives:
    """Response id rows (``pool``) and, for each training pair, the indices of its own (``of``)."""

    pool: list[np.ndarray]
    of: list[np.ndarray]
    count: int  # drawn per context each step

    def drawn(self, rng: np.random.Generator, pairs: int) -> np.ndarray:
        """(pairs, count) of uniform numbers in [0, 1): an epoch's draws, made before its first
        batch, so that a run resumed mid-epoch draws the same negatives as one that was not."""
        return rng.random((pairs, self.count))

    def chosen(self, rows: np.ndarray, draws: np.ndarray) -> list[list[int]]:
        """For each of ``count`` slots, the pool index each row of a batch brings."""
        return [[int(self.of[i][int(draws[i, k] * len(self.of[i]))]) for i in rows] for k in range(self.count)]


def own_turns(context: str) -> list[str]:
    """A context's turns, each written as a response is (its utterances, each ending ``__eou__``)."""
    return [t.strip() for t in context.split(EOT) if t.strip()]


def mine(contexts: Sequence[str], responses: Sequence[str], vectors, count: int,
         seed: int) -> tuple[list[str], list[list[int]]]:
    """For each (context, true response) pair: indices into the returned texts of its hard
    negatives (never empty). ``vectors(texts)`` gives TF-IDF rows (unit length, sparse)."""
    repository = list(dict.fromkeys(responses))
    rng = np.random.default_rng(seed)
    sample = [repository[i] for i in np.sort(rng.choice(len(repository), min(POOL, len(repository)), replace=False))]
    texts: dict[str, int] = {t: i for i, t in enumerate(sample)}
    neighbours = _neighbours(list(dict.fromkeys(contexts)), sample, vectors)
    sets: dict[str, frozenset[str]] = {}

    def word_set(text: str) -> frozenset[str]:
        if text not in sets:
            sets[text] = frozenset(words(text))
        return sets[text]

    of = []
    for context, truth in zip(contexts, responses):
        truth_words = word_set(truth)
        turns = [t for t in own_turns(context) if word_set(t) != truth_words]
        near = [sample[j] for j in neighbours[context] if similarity(word_set(sample[j]), truth_words) < NEAR]
        kept = list(dict.fromkeys([*turns, *near]))
        if not kept:  # every one says what the truth says: a random response instead
            kept = [sample[int(rng.integers(len(sample)))]]
        of.append([texts.setdefault(t, len(texts)) for t in kept])
    return list(texts), of


def _neighbours(contexts: list[str], sample: list[str], vectors) -> dict[str, np.ndarray]:
    """Each context's ``NEIGHBOURS`` nearest responses of ``sample`` by TF-IDF cosine."""
    R = vectors(sample).T.tocsc()
    k = min(NEIGHBOURS, len(sample))
    found = {}
    for a in range(0, len(contexts), _CHUNK):
        chunk = contexts[a:a + _CHUNK]
        S = (vectors(chunk) @ R).toarray()
        best = np.argpartition(-S, k - 1, axis=1)[:, :k] if k < len(sample) else np.tile(np.arange(k), (len(S), 1))
        found.update(zip(chunk, best))
    return found
