"""Ranking data: the Ubuntu Dialogue Corpus's CSV layout, read, checked and turned into ids.

A dataset is a directory with ``train.csv`` (``Context,Utterance,Label``) and ``valid.csv`` /
``test.csv`` (``Context,Ground Truth Utterance,Distractor_0`` … ``Distractor_8``): what
``rnnkit rank build`` writes, and what the UDC ships. Text is read through the text pipeline
(lower-cased Treebank words; ``__eou__`` and ``__eot__`` stay tokens); a context keeps its last
tokens, a response its first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.batching import grouped_batches, pad_batch
from rnnkit.errors import RnnkitError
from rnnkit.rank.build import EVAL_COLUMNS, TRAIN_COLUMNS
from rnnkit.rank.negatives import HardNegatives
from rnnkit.rank.similar import deduplicated
from rnnkit.text.pipeline import TextPipeline
from rnnkit.text.readers import CONVERT_ADVICE, csv_rows
from rnnkit.text.vocab import Vocabulary


@dataclass
class PairBatch:
    """(context, response) pairs for a ranker: padded ids and masks; ``labels`` (B,) 1 for a true
    response and 0 for a random one (binary objective), or None (in-batch negatives); and, with
    in-batch negatives, each context's hard negatives, ``negatives`` (n, B, T) and their mask."""

    contexts: np.ndarray
    context_mask: np.ndarray
    responses: np.ndarray
    response_mask: np.ndarray
    labels: np.ndarray | None = None
    negatives: np.ndarray | None = None
    negative_mask: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.contexts)

    def rows(self, part: slice) -> PairBatch:
        def of(array: np.ndarray | None, axis: int = 0) -> np.ndarray | None:
            return None if array is None else array[(slice(None),) * axis + (part,)]

        return PairBatch(self.contexts[part], self.context_mask[part], self.responses[part], self.response_mask[part],
                         of(self.labels), of(self.negatives, 1), of(self.negative_mask, 1))

    def negatives_flat(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The hard negatives as rows (n·B, T), slot by slot, and their mask; None without them."""
        if self.negatives is None:
            return None
        n, B, T = self.negatives.shape
        return self.negatives.reshape(n * B, T), self.negative_mask.reshape(n * B, T)


def split_file(data: str | Path, split: str) -> str:
    path = Path(data) / f"{split}.csv"
    if not Path(data).is_dir():
        raise RnnkitError(f"{data} is not a ranking dataset directory; make one with `rnnkit rank build`, or give "
                          "a directory holding the UDC's train.csv, valid.csv and test.csv")
    if not path.is_file():
        raise RnnkitError(f"{data} has no {split}.csv; a ranking dataset holds train.csv, valid.csv and test.csv")
    return str(path)


def _checked(rows: Iterator[list[str]], path: str) -> Iterator[tuple[int, list[str]]]:
    found = False
    for number, row in enumerate(rows, 2):
        if not all(cell.strip() for cell in row):
            raise RnnkitError(f"{path}: row {number} has an empty context or response; every cell needs text")
        found = True
        yield number, row
    if not found:
        raise RnnkitError(f"{path} has no rows below its header")


def read_train(data: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """Contexts, utterances and labels (1 true response, 0 a random one) of ``train.csv``."""
    path = split_file(data, "train")
    contexts, responses, labels = [], [], []
    rows = csv_rows(path, TRAIN_COLUMNS, hint="a UDC train file has Context,Utterance,Label", advice=CONVERT_ADVICE)
    for number, (context, response, label) in _checked(rows, path):
        try:
            value = float(label)
        except ValueError:
            value = -1.0
        if value not in (0.0, 1.0):
            raise RnnkitError(f"{path}: row {number}: the label is {label!r}; use 1 (true response) or 0")
        contexts.append(context)
        responses.append(response)
        labels.append(value)
    if 1.0 not in labels:
        raise RnnkitError(f"{path} has no true response (no row with label 1): a ranker learns from those")
    return contexts, responses, np.array(labels)


def training_responses(data: str | Path) -> tuple[str, ...]:
    """The true responses of a dataset's ``train.csv``, one for each normalised spelling
    (``similar.deduplicated``), in order: a bot's repository (a tuple: it cannot change, so a
    ranker need not hash it again query after query)."""
    _, responses, labels = read_train(data)
    repository = deduplicated(r for r, label in zip(responses, labels) if label == 1)
    if not repository:
        raise RnnkitError(f"{split_file(data, 'train')} has no true response (label 1) to answer with")
    return repository


def read_eval(data: str | Path, split: str) -> tuple[list[str], list[list[str]]]:
    """Contexts, and each one's 10 candidates with the true response first, of ``valid.csv`` or ``test.csv``."""
    path = split_file(data, split)
    rows = csv_rows(path, EVAL_COLUMNS, hint="a UDC valid/test file has Context,Ground Truth Utterance,"
                                             "Distractor_0..Distractor_8", advice=CONVERT_ADVICE)
    contexts, candidates = [], []
    for _, row in _checked(rows, path):
        contexts.append(row[0])
        candidates.append(row[1:])
    return contexts, candidates


@dataclass
class TextIds:
    """Text → ids as a ranker reads it: the pipeline, the vocabulary and the length limits."""

    text: TextPipeline
    vocab: Vocabulary
    max_context: int
    max_response: int

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        return tokenize(self.text, texts)

    def context_ids(self, tokens: Sequence[str]) -> np.ndarray:
        """A context keeps its last ``max_context`` tokens: the turns nearest the response."""
        return self.vocab.encode(tokens[-self.max_context:])

    def response_ids(self, tokens: Sequence[str]) -> np.ndarray:
        return self.vocab.encode(tokens[: self.max_response])

    def contexts(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [self.context_ids(t) for t in self.tokens(texts)]

    def responses(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [self.response_ids(t) for t in self.tokens(texts)]


def tokenize(text: TextPipeline, texts: Sequence[str]) -> list[list[str]]:
    return text.split([text.normalize(t) for t in texts])


def distinct_tokens(text: TextPipeline, texts: Sequence[str]) -> dict[str, list[str]]:
    """Each distinct text's tokens: a dataset repeats its contexts (once with the true response,
    once with a random one) and its turns (in contexts and as responses)."""
    distinct = list(dict.fromkeys(texts))
    return dict(zip(distinct, tokenize(text, distinct)))


def checked_lengths(rows: list[np.ndarray], what: str) -> np.ndarray:
    lengths = np.array([len(r) for r in rows])
    if len(lengths) and lengths.min() == 0:
        raise RnnkitError(f"a {what} has no tokens after tokenizing; every cell needs words")
    return lengths


@dataclass
class PairData:
    """Training pairs as ids: ``labels`` 1/0, or None for in-batch negatives (true pairs only)."""

    contexts: list[np.ndarray]
    responses: list[np.ndarray]
    labels: np.ndarray | None
    hard: HardNegatives | None = None

    def __len__(self) -> int:
        return len(self.contexts)

    def batches(self, batch_size: int, rng: np.random.Generator, start: int = 0) -> Iterator[PairBatch]:
        """One epoch in random order, batches of similar context length."""
        lengths = np.array([len(c) for c in self.contexts])
        batches = grouped_batches(lengths, batch_size, rng)
        draws = self.hard.drawn(rng, len(self)) if self.hard is not None else None  # drawn whatever ``start``
        for chosen in batches[start:]:
            c, c_mask = pad_batch([self.contexts[i] for i in chosen])
            r, r_mask = pad_batch([self.responses[i] for i in chosen])
            batch = PairBatch(c, c_mask, r, r_mask, None if self.labels is None else self.labels[chosen])
            if draws is not None:
                slots = self.hard.chosen(chosen, draws)
                ids, mask = pad_batch([self.hard.pool[j] for slot in slots for j in slot])
                batch.negatives, batch.negative_mask = ids.reshape(len(slots), len(chosen), -1), \
                    mask.reshape(len(slots), len(chosen), -1)
            yield batch


def training_pairs(ids: TextIds, tokens: dict[str, list[str]], contexts: list[str], responses: list[str],
                   labels: np.ndarray, in_batch: bool) -> PairData:
    """The pairs a model trains on (``tokens`` of every text): every row (binary), or the true pairs
    only (in-batch negatives)."""
    if in_batch:
        keep = np.flatnonzero(labels == 1)
        contexts, responses, labels = [contexts[i] for i in keep], [responses[i] for i in keep], None
    pairs = PairData([ids.context_ids(tokens[t]) for t in contexts], [ids.response_ids(tokens[t]) for t in responses],
                     labels)
    checked_lengths(pairs.contexts, "context")
    checked_lengths(pairs.responses, "response")
    return pairs
