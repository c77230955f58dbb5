"""Streaming readers: a file (plain text, CSV, JSON lines, any of them gzipped, or stdin) → text records.

A record is the unit a user thinks in: a CSV cell, a JSON field, a paragraph of plain text (or a
single line with ``unit="line"``). Nothing here holds a whole file in memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Literal

from rnnkit.errors import RnnkitError

Format = Literal["auto", "text", "csv", "jsonl"]
Unit = Literal["paragraph", "line"]

# A paragraph with no blank line in sight (verse, one-sentence-per-line text) is cut at a line
# boundary here, so memory stays bounded and work can be shared out on any input.
MAX_PARAGRAPH_CHARS = 1 << 16

csv.field_size_limit(1 << 30)


def detect_format(path: str) -> str:
    """The format a file name implies: .csv, .jsonl/.ndjson/.json (gzip allowed), else plain text."""
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "text"


def check_input(path: str) -> None:
    """Fail early, with a clear message, on a path that cannot be read as an input file."""
    if path == "-":
        return
    p = Path(path)
    if not p.exists():
        raise RnnkitError(f"{path}: no such file; check the path")
    if p.is_dir():
        raise RnnkitError(f"{path} is a directory; give the files inside it (for example {path}/*.txt)")
    if p.is_file() and p.stat().st_size == 0:  # a pipe (<(printf …)) has no size until it is read
        raise RnnkitError(f"{path} is empty; give a file with text in it")


def _open_binary(path: str) -> BinaryIO:
    raw: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return gzip.open(buffered, "rb")  # type: ignore[return-value]
    return buffered


ENCODING_ADVICE = "convert the file to UTF-8, or pass --encoding-errors replace to go on"
CONVERT_ADVICE = "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"  # where no flag lets bad bytes pass


def decoded_lines(path: str, encoding_errors: str = "strict", on_read: Callable[[int], None] | None = None,
                  advice: str = ENCODING_ADVICE) -> Iterator[str]:
    """The file's lines as str, newline kept; undecodable bytes are reported with line and byte
    offset, and ``advice``. ``on_read`` hears of the bytes read (decompressed), a megabyte or so
    at a time."""
    name = "stdin" if path == "-" else path
    f = _open_binary(path)
    offset = told = 0
    try:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8", encoding_errors)
            except UnicodeDecodeError as e:
                raise RnnkitError(
                    f"{name}: line {lineno}, byte {offset + e.start}: not valid UTF-8 ({e.reason}); {advice}"
                ) from None
            except LookupError:
                raise RnnkitError(f"unknown --encoding-errors value {encoding_errors!r}; use strict, replace or ignore") from None
            offset += len(raw)
            if on_read is not None and offset - told >= 1 << 20:
                on_read(offset - told)
                told = offset
            if "\r" in line:  # universal line ends, as Python's text mode: \r\n and a lone \r end a line too
                *ended, last = line.replace("\r\n", "\n").split("\r")
                yield from (part + "\n" for part in ended)
                if last:
                    yield last
                continue
            yield line
        if on_read is not None:
            on_read(offset - told)
    except (OSError, EOFError) as e:  # e.g. a truncated gzip stream
        raise RnnkitError(f"{name}: cannot read it ({e})") from None
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def _text_records(lines: Iterator[str], unit: Unit) -> Iterator[str]:
    if unit == "line":
        for line in lines:
            yield line.rstrip("\r\n")
        return
    para: list[str] = []
    size = 0
    for line in lines:
        if line.strip():
            para.append(line)
            size += len(line)
            if size < MAX_PARAGRAPH_CHARS:
                continue
        if para:
            yield "".join(para)
            para, size = [], 0
    if para:
        yield "".join(para)


def _csv_rows(lines: Iterator[str], name: str, columns: Sequence[str], hint: str) -> Iterator[list[str]]:
    reader = csv.reader(lines, skipinitialspace=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise RnnkitError(f"{name}: line 1: bad CSV header ({e})") from None
    if header is None:
        raise RnnkitError(f"{name}: no CSV header row; the first row must name the columns")
    header = [h.strip() for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise RnnkitError(f"{name} has no column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                          f"(its columns: {', '.join(header)}); {hint}")
    where = [header.index(c) for c in columns]
    try:
        for row in reader:
            if len(row) > max(where):
                yield [row[i] for i in where]
            elif row:  # a row cut short would shift or lose its columns: refused, not dropped in silence
                raise RnnkitError(f"{name}: line {reader.line_num} has {len(row)} field{'s' if len(row) != 1 else ''}"
                                  f" where the header has {len(header)}; {hint}")
    except csv.Error as e:
        raise RnnkitError(f"{name}: line {reader.line_num}: bad CSV ({e})") from None


def _csv_records(lines: Iterator[str], name: str, column: str) -> Iterator[str]:
    return (row[0] for row in _csv_rows(lines, name, [column], "pass --column NAME"))


def csv_rows(path: str, columns: Sequence[str], *, hint: str = "check the file", encoding_errors: str = "strict",
             advice: str = ENCODING_ADVICE) -> Iterator[list[str]]:
    """The named columns of each row of a CSV file (with a header row), in that order."""
    check_input(path)
    return _csv_rows(decoded_lines(path, encoding_errors, advice=advice), os.fspath(path), columns, hint)


def _jsonl_records(lines: Iterator[str], name: str, field: str) -> Iterator[str]:
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise RnnkitError(f"{name}: line {lineno}: not JSON ({e.msg}); give one JSON object per line") from None
        if not isinstance(obj, dict) or field not in obj:
            keys = ", ".join(obj) if isinstance(obj, dict) else type(obj).__name__
            raise RnnkitError(f"{name}: line {lineno} has no field {field!r} (it has: {keys}); pass --field NAME")
        value = obj[field]
        if isinstance(value, str):
            yield value


def iter_records(
    path: str,
    *,
    format: Format = "auto",
    column: str = "body",
    field: str = "text",
    unit: Unit = "paragraph",
    encoding_errors: str = "strict",
    on_read: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """Text records from one input. ``unit`` only matters for plain text: paragraph or line.
    ``on_read`` hears of the bytes read (for a progress bar)."""
    check_input(path)
    name = "stdin" if path == "-" else os.fspath(path)
    fmt = detect_format(name) if format == "auto" else format
    lines = decoded_lines(path, encoding_errors, on_read)
    if fmt == "csv":
        return _csv_records(lines, name, column)
    if fmt == "jsonl":
        return _jsonl_records(lines, name, field)
    if fmt == "text":
        return _text_records(lines, unit)
    raise RnnkitError(f"unknown format {format!r}; use auto, text, csv or jsonl")
