"""``prepare``: text files → a prepared-corpus directory (see ``rnnkit.data.corpus`` for the layout).

The seed's recipe (Part 2, "Training Data and Preprocessing"), made to scale:

1. read records, lower-case, split into sentences (Punkt), tokenize (Treebank): the text pipeline
   (``rnnkit.text.pipeline``) that models trained on the corpus read new text with;
2. count tokens in the training split; the vocabulary is the ``vocab_size - 1`` most frequent
   (``SENTENCE_START`` and ``SENTENCE_END`` among them, counted once per sentence as in the seed)
   plus the unknown token, last;
3. map every other token to the unknown token and write each split's ids.

Ranking rule: by count, most frequent first; ties go to the token that appears first in the
training split, the sentence markers counting as appearing before every word. This is the seed's
``FreqDist.most_common`` order.

Pass 1 streams the input once and writes provisional ids (one per distinct token, in order of
first appearance) to a temporary file, so memory holds only the distinct tokens, never the text.
Pass 2 counts the training split and rewrites the ids through a lookup table, in blocks.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._version import __version__
from rnnkit.data.corpus import FORMAT, FORMAT_VERSION, SPLITS, PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.fsutil import atomic_directory
from rnnkit.text.pipeline import TextPipeline, sentence_splitter, word_tokenizer
from rnnkit.text.readers import Format, check_input, iter_records
from rnnkit.text.tokenize import Level, TokenizerName
from rnnkit.text.vocab import (
    SENTENCE_END,
    SENTENCE_START,
    UNKNOWN_CHAR,
    UNKNOWN_TOKEN,
    Vocabulary,
    rank_tokens,
)

_FLUSH_TOKENS = 1 << 20  # provisional ids buffered in memory before they go to disk
_BLOCK_SENTENCES = 1 << 16  # sentences handled at once in pass 2
_BATCH_CHARS = 1 << 16  # text handed to a sentence-splitting worker at once
_PARALLEL_BYTES = 1 << 20  # smaller inputs are split in this process: starting workers costs more


@dataclass
class _Pass1:
    """What pass 1 leaves behind: provisional ids on disk and per-sentence lengths."""

    stream_path: Path
    lengths_path: Path
    tokens: list[str] = field(default_factory=list)  # provisional id → token (word level)
    max_code: int = 0  # largest code point seen (character level)
    sentences_per_source: list[int] = field(default_factory=lambda: [0, 0, 0])
    input_bytes: int = 0
    example: tuple[str, list[int]] | None = None

    def blocks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first sentence, lengths, ids) for consecutive blocks of sentences, read from disk."""
        first = 0
        with open(self.lengths_path, "rb") as lengths_file, open(self.stream_path, "rb") as ids_file:
            while True:
                lengths = np.fromfile(lengths_file, dtype=np.int32, count=_BLOCK_SENTENCES)
                if not len(lengths):
                    return
                ids = np.fromfile(ids_file, dtype=np.int32, count=int(lengths.sum(dtype=np.int64)))
                yield first, lengths, ids
                first += len(lengths)


class _Writer:
    """Buffers provisional ids and sentence lengths, appending them to two files."""

    def __init__(self, state: _Pass1) -> None:
        self.state = state
        self.ids: list[int] = []
        self.lengths: list[int] = []
        self._ids_file = open(state.stream_path, "ab")
        self._lengths_file = open(state.lengths_path, "ab")

    def flush(self) -> None:
        np.asarray(self.ids, dtype=np.int32).tofile(self._ids_file)
        np.asarray(self.lengths, dtype=np.int32).tofile(self._lengths_file)
        self.ids.clear()
        self.lengths.clear()

    def close(self) -> None:
        self.flush()
        self._ids_file.close()
        self._lengths_file.close()


def _record_batches(records: Iterable[str], state: _Pass1) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for record in records:
        batch.append(record)
        size += len(record)
        if size >= _BATCH_CHARS:
            state.input_bytes += size
            yield batch
            batch, size = [], 0
    state.input_bytes += size
    if batch:
        yield batch


def _tokenize_batch(records: list[str], text: TextPipeline, lines: bool) -> tuple[list[str], str | None]:
    """Records → one string of space-separated tokens per sentence, and the batch's first sentence.

    All the text work of pass 1 (lower-casing, sentence splitting, tokenizing) happens here, in
    worker processes when there are several cores; the parent only maps tokens to ids.
    """
    records = [text.normalize(r) for r in records]
    sentences = records if lines else [s for r in records for s in sentence_splitter().split(r)]
    tokenized = text.split(sentences)
    first = next((" ".join(s.split()) for s, t in zip(sentences, tokenized) if t), None)
    return [" ".join(t) for t in tokenized if t], first


def _tokenized_batches(batches: Iterable[list[str]], workers: int, text: TextPipeline,
                       lines: bool) -> Iterator[tuple[list[str], str | None]]:
    """``_tokenize_batch`` over the batches, in ``workers`` processes, a bounded number of batches ahead."""
    if workers <= 1:
        for batch in batches:
            yield _tokenize_batch(batch, text, lines)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    sentence_splitter(), word_tokenizer(text.tokenizer)  # load the models once, before forking: workers share them
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.apply_async(_tokenize_batch, (batch, text, lines)))
            if len(pending) > 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _encode_words(batches: Iterable[tuple[list[str], str | None]], writer: _Writer, source: int,
                  index: dict[str, int], state: _Pass1) -> None:
    """Token strings → provisional ids (one per distinct token, in the order met), a batch at a time."""
    ids, lengths = writer.ids, writer.lengths
    get = index.get
    count = 0
    for sentences, first in batches:
        if not sentences:
            continue
        tokens = " ".join(sentences).split(" ")  # tokens hold no spaces
        values = list(map(get, tokens))
        if None in values:
            for token in tokens:
                if token not in index:
                    index[token] = len(index)
            values = list(map(index.__getitem__, tokens))
        sizes = [s.count(" ") + 1 for s in sentences]
        if state.example is None:
            state.example = (first or "", values[:sizes[0]])
        ids += values
        lengths += sizes
        count += len(sentences)
        if len(ids) >= _FLUSH_TOKENS:
            writer.flush()
    state.sentences_per_source[source] += count


def _encode_chars(records: Iterable[str], writer: _Writer, source: int, *, text: TextPipeline, state: _Pass1) -> None:
    # Each record is a unit (a line of plain text, a CSV cell, ...) followed by a newline; code points are the ids.
    pending: list[str] = []
    size = 0
    count = 0

    def flush() -> None:
        nonlocal size
        text = "".join(pending)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if codes.size:
            state.max_code = max(state.max_code, int(codes.max()))
        writer.ids.extend(codes.astype(np.int32).tolist())
        writer.lengths.extend(len(u) for u in pending)
        if state.example is None and pending:
            state.example = (pending[0], codes[: len(pending[0])].tolist())
        pending.clear()
        size = 0
        writer.flush()

    for record in records:
        state.input_bytes += len(record)
        unit = text.normalize(record) + "\n"
        pending.append(unit)
        size += len(unit)
        count += 1
        if size >= _FLUSH_TOKENS:
            flush()
    flush()
    state.sentences_per_source[source] += count


def _assign_splits(state: _Pass1, valid_fraction: float, test_fraction: float, seed: int,
                   tail: bool = False) -> np.ndarray:
    """Split label per sentence (0 train, 1 valid, 2 test): ready-made files keep theirs, the rest
    is drawn at random, or (``tail``) cut contiguously: train, then valid, then test, by tokens."""
    n_train, n_valid, n_test = state.sentences_per_source
    labels = np.empty(n_train + n_valid + n_test, dtype=np.uint8)
    if tail:
        _cut_tail(state, labels[:n_train], valid_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    for a in range(0, n_train if not tail else 0, _BLOCK_SENTENCES):
        u = rng.random(min(_BLOCK_SENTENCES, n_train - a))
        labels[a:a + len(u)] = np.where(u < valid_fraction, 1, np.where(u < valid_fraction + test_fraction, 2, 0))
    labels[n_train:n_train + n_valid] = 1
    labels[n_train + n_valid:] = 2
    return labels


def _cut_tail(state: _Pass1, labels: np.ndarray, valid_fraction: float, test_fraction: float) -> None:
    """Label the first sentences train, the ones that start in the last ``valid + test`` fraction
    of the tokens valid, those in the last ``test`` fraction test (nanoGPT's split, at sentence
    boundaries). Two passes over the lengths, a block at a time: memory stays flat."""
    lengths = np.memmap(state.lengths_path, dtype=np.int32, mode="r")[: len(labels)]
    total = sum(int(lengths[a:a + _BLOCK_SENTENCES].sum(dtype=np.int64))
                for a in range(0, len(lengths), _BLOCK_SENTENCES))
    valid_from, test_from = total * (1 - valid_fraction - test_fraction), total * (1 - test_fraction)
    seen = 0
    for a in range(0, len(lengths), _BLOCK_SENTENCES):
        block = lengths[a:a + _BLOCK_SENTENCES].astype(np.int64)
        starts = seen + np.cumsum(block) - block
        labels[a:a + len(block)] = np.where(starts >= test_from, 2, np.where(starts >= valid_from, 1, 0))
        seen += int(block.sum())
    del lengths


def _count_train(state: _Pass1, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Each token's count in the training split, the position where it first appears there, and
    the number of tokens of each split."""
    counts = np.zeros(size, dtype=np.int64)
    first_seen = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    split_tokens = [0] * len(SPLITS)
    seen = 0
    for a, lengths, ids in state.blocks():
        block_labels = labels[a:a + len(lengths)]
        for label in range(len(SPLITS)):
            split_tokens[label] += int(lengths[block_labels == label].sum(dtype=np.int64))
        train = ids[np.repeat(block_labels == 0, lengths)]
        counts += np.bincount(train, minlength=size)
        unique, where = np.unique(train, return_index=True)
        first_seen[unique] = np.minimum(first_seen[unique], where + seen)
        seen += len(train)
    return counts, first_seen, split_tokens


def _choose_vocabulary(state: _Pass1, counts: np.ndarray, first_seen: np.ndarray, n_train_sentences: int, *, level: Level,
                       vocab_size: int, unk_token: str) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """The vocabulary (tokens in id order) and the provisional-id → final-id lookup table."""
    candidates = np.flatnonzero(counts)
    if level == "word":
        names = state.tokens
        specials = [SENTENCE_START, SENTENCE_END]
        # A literal marker in the text is the marker; the unknown token is placed last, not ranked.
        excluded = {t for t in (*specials, unk_token)}
        candidates = np.array([i for i in candidates if names[i] not in excluded], dtype=np.int64)
        marker_ids = np.array([-2, -1])  # stand-ins that sort before every word on ties
        n_markers = np.array([n_train_sentences + (counts[state.tokens.index(s)] if s in state.tokens else 0)
                              for s in specials])
        pool = np.concatenate([marker_ids, candidates])
        order = pool[rank_tokens(np.concatenate([n_markers, counts[candidates]]),
                                 np.concatenate([marker_ids, first_seen[candidates]]))]
        name_of = lambda i: specials[i + 2] if i < 0 else names[i]  # noqa: E731
        count_of = lambda i: int(n_markers[i + 2]) if i < 0 else int(counts[i])  # noqa: E731
    else:
        unk_code = ord(unk_token) if len(unk_token) == 1 else -1
        candidates = candidates[candidates != unk_code]
        order = candidates[rank_tokens(counts[candidates], first_seen[candidates])]
        name_of = chr  # noqa: E731
        count_of = lambda i: int(counts[i])  # noqa: E731
        specials = []
    kept = [int(i) for i in (order if vocab_size == 0 else order[: vocab_size - 1])]
    if level == "word" and not {-2, -1} <= set(kept):
        # Only a tiny vocabulary can miss a marker: the markers then take the rarest words' places.
        kept = [-2, -1] + [int(i) for i in order if i >= 0][: vocab_size - 3]
    words = [i for i in kept if i >= 0]
    tokens = [name_of(i) for i in kept] + [unk_token]
    position = {t: i for i, t in enumerate(kept)}
    lookup = np.full(len(counts), len(tokens) - 1, dtype=np.int32)
    lookup[np.array(words, dtype=np.int64)] = [position[w] for w in words]
    least = kept[-1] if kept else None
    stats = {
        "unique_tokens": int(len(candidates)),
        "least_frequent_word": name_of(least) if least is not None else None,
        "least_frequent_count": count_of(least) if least is not None else 0,
    }
    if level == "word":
        stats["sentence_start_id"] = tokens.index(SENTENCE_START)
        stats["sentence_end_id"] = tokens.index(SENTENCE_END)
    return tokens, lookup, stats


def _read_progress(paths: list[str], enabled: bool | None):
    """A tqdm bar of the input bytes read (MB/s, time to go), shown on a terminal or when asked.
    Gzipped inputs count their decompressed bytes, so their total is unknown."""
    from tqdm import tqdm

    plain = [p for p in paths if p != "-" and not p.endswith(".gz")]
    total = sum(Path(p).stat().st_size for p in plain) if len(plain) == len(paths) else None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="reading", leave=False,
                dynamic_ncols=True, disable=not (sys.stderr.isatty() if enabled is None else enabled))


def _npy_writer(path: Path, dtype: np.dtype, length: int):
    """An open file with the header of a 1-d .npy array of ``length`` items; the caller appends the data."""
    f = open(path, "wb")
    np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                                             "shape": (length,)})
    return f


def _write_splits(tmp: Path, state: _Pass1, labels: np.ndarray, split_tokens: list[int], lookup: np.ndarray,
                  unk_id: int, dtype: np.dtype) -> dict[str, dict[str, int]]:
    """Each split's final ids and sentence offsets, written block by block (memory stays flat)."""
    present = [(label, split) for label, split in enumerate(SPLITS) if np.any(labels == label)]
    summary = {split: {"sentences": int(np.count_nonzero(labels == label)), "tokens": split_tokens[label],
                       "unknown": 0} for label, split in present}
    ids_files = {label: _npy_writer(tmp / f"{split}.ids.npy", dtype, split_tokens[label]) for label, split in present}
    offset_files = {label: _npy_writer(tmp / f"{split}.offsets.npy", np.dtype(np.int64),
                                       summary[split]["sentences"] + 1) for label, split in present}
    position = dict.fromkeys(ids_files, 0)
    try:
        for f in offset_files.values():
            np.zeros(1, dtype=np.int64).tofile(f)
        for a, lengths, ids in state.blocks():
            block_labels = labels[a:a + len(lengths)]
            token_labels = np.repeat(block_labels, lengths)
            for label, split in present:
                chosen = lookup[ids[token_labels == label]].astype(dtype)
                chosen.tofile(ids_files[label])
                (position[label] + np.cumsum(lengths[block_labels == label], dtype=np.int64)).tofile(offset_files[label])
                position[label] += len(chosen)
                summary[split]["unknown"] += int(np.count_nonzero(chosen == unk_id))
    finally:
        for f in (*ids_files.values(), *offset_files.values()):
            f.close()
    return summary


def prepare(
    inputs: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    vocab_size: int = 8000,
    level: Level = "word",
    tokenizer: TokenizerName = "treebank",
    lines: bool = False,
    unk_token: str | None = None,
    column: str = "body",
    field: str = "text",
    format: Format = "auto",
    lowercase: bool | None = None,
    valid_fraction: float | None = None,
    test_fraction: float = 0.0,
    valid_file: str | Path | None = None,
    test_file: str | Path | None = None,
    seed: int = 0,
    force: bool = False,
    encoding_errors: str = "strict",
    workers: int | None = None,
    progress: bool | None = None,
    split_tail: bool = False,
) -> PreparedCorpus:
    """Prepare text for training; returns the opened corpus (its ``meta`` holds the statistics).

    ``vocab_size`` counts every id, the sentence markers and the unknown token included; 0 keeps
    every token. ``lowercase`` defaults to on for words and off for characters. The validation
    fraction defaults to 0.05, or 0 when a ``valid_file`` is given. ``workers``: processes that
    split and tokenize (default: one per core, up to 2, when the input is over a megabyte).
    ``progress``: a bar of the bytes read, MB/s and the time to go (default: when stderr is a terminal).
    ``split_tail``: the validation and test splits are the end of the text, contiguous (as nanoGPT
    splits), not sentences drawn at random.
    """
    started = time.perf_counter()
    inputs = [str(p) for p in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    if not inputs:
        raise RnnkitError("no input given; name one or more text, CSV or JSON-lines files (or - for stdin)")
    text = TextPipeline.create(level, tokenizer, lowercase)
    if vocab_size < 0 or 0 < vocab_size < 4:
        raise RnnkitError(f"a vocabulary size of {vocab_size} is too small; use 4 or more (it counts "
                          "SENTENCE_START, SENTENCE_END and the unknown token), or 0 to keep every token")
    if valid_file is not None and valid_fraction:
        raise RnnkitError("give either --valid-file or --valid-fraction, not both")
    if test_file is not None and test_fraction:
        raise RnnkitError("give either --test-file or --test-fraction, not both")
    valid_fraction = (0.0 if valid_file is not None else 0.05) if valid_fraction is None else float(valid_fraction)
    for name, value in (("--valid-fraction", valid_fraction), ("--test-fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise RnnkitError(f"{name} must be at least 0 and below 1 (got {value})")
    if valid_fraction + test_fraction >= 1.0:
        raise RnnkitError("--valid-fraction and --test-fraction leave nothing to train on; keep their sum below 1")
    if unk_token is None:
        unk_token = UNKNOWN_TOKEN if level == "word" else UNKNOWN_CHAR
    if not unk_token or (level == "word" and any(c.isspace() for c in unk_token)):
        raise RnnkitError(f"--unk-token {unk_token!r} must be a non-empty token without spaces")
    sources = [inputs, [str(valid_file)] if valid_file else [], [str(test_file)] if test_file else []]
    for path in (p for group in sources for p in group):
        check_input(path)
    if sum(p == "-" for group in sources for p in group) > 1:
        raise RnnkitError("stdin (-) can be read only once; give files for the other inputs")

    unit = "line" if lines or level == "char" else "paragraph"
    bar = _read_progress([p for group in sources for p in group], progress)
    read = lambda path: iter_records(path, format=format, column=column, field=field,  # noqa: E731
                                     unit=unit, encoding_errors=encoding_errors, on_read=bar.update)
    with atomic_directory(out, force=force) as tmp, bar:
        state = _Pass1(tmp / "pass1.ids", tmp / "pass1.lengths")
        writer = _Writer(state)
        try:
            if level == "word":
                index: dict[str, int] = {}
                if workers is None:
                    small = all(p != "-" and Path(p).stat().st_size < _PARALLEL_BYTES for g in sources for p in g)
                    workers = 1 if small else min(2, os.cpu_count() or 1)
                for source, group in enumerate(sources):
                    for path in group:
                        batches = _tokenized_batches(_record_batches(read(path), state), workers, text, lines)
                        _encode_words(batches, writer, source, index, state)
                state.tokens = list(index)
            else:
                for source, group in enumerate(sources):
                    for path in group:
                        _encode_chars(read(path), writer, source, text=text, state=state)
        finally:
            writer.close()
        if state.sentences_per_source[0] == 0:
            raise RnnkitError(f"found no text in {', '.join(inputs)}; check the file (and --column/--field for CSV/JSON)")

        labels = _assign_splits(state, valid_fraction, test_fraction, seed, tail=split_tail)
        n_train_sentences = int(np.count_nonzero(labels == 0))
        if n_train_sentences == 0:
            raise RnnkitError("the training split is empty; lower --valid-fraction/--test-fraction or add text")
        size = len(state.tokens) if level == "word" else state.max_code + 1
        counts, first_seen, split_tokens = _count_train(state, labels, size)
        tokens, lookup, vocab_stats = _choose_vocabulary(state, counts, first_seen, n_train_sentences, level=level,
                                                         vocab_size=vocab_size, unk_token=unk_token)
        vocab = Vocabulary(tokens, unk_token)
        dtype = np.dtype(np.uint16 if len(tokens) <= 1 << 16 else np.int32)
        splits = _write_splits(tmp, state, labels, split_tokens, lookup, vocab.unk_id, dtype)
        state.stream_path.unlink()
        state.lengths_path.unlink()
        vocab.save(tmp / "vocab.txt")

        example_text, example_ids = state.example or ("", [])
        example_tokens = vocab.decode(lookup[np.array(example_ids, dtype=np.int64)].tolist())
        if level == "word":
            example_text = f"{SENTENCE_START} {example_text} {SENTENCE_END}"
            example_tokens = [SENTENCE_START, *example_tokens, SENTENCE_END]
        seconds = time.perf_counter() - started
        meta: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "rnnkit_version": __version__,
            **text.to_dict(),
            "lines": lines,
            "unk_token": unk_token,
            "vocab_size": len(vocab),
            "vocab_size_requested": vocab_size,
            "unknown_id": vocab.unk_id,
            "sentence_start_id": vocab_stats.pop("sentence_start_id", None),
            "sentence_end_id": vocab_stats.pop("sentence_end_id", None),
            "ids_dtype": dtype.name,
            "sentences": sum(s["sentences"] for s in splits.values()),
            "tokens": sum(s["tokens"] for s in splits.values()),
            **vocab_stats,
            "splits": splits,
            "example": {"text": example_text, "tokens": example_tokens},
            "settings": {
                "inputs": inputs, "valid_file": sources[1][0] if sources[1] else None,
                "test_file": sources[2][0] if sources[2] else None, "format": format, "column": column,
                "field": field, "valid_fraction": valid_fraction, "test_fraction": test_fraction,
                "seed": seed, "split_tail": split_tail, "encoding_errors": encoding_errors,
            },
            "input_chars": state.input_bytes,
            "seconds": round(seconds, 3),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return PreparedCorpus.open(out)
