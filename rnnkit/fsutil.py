"""Where rnnkit keeps its files, and writing outputs so that a crash never leaves a half-written file or directory behind."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnkit.errors import RnnkitError


@contextmanager
def atomic_directory(out: str | Path, *, force: bool = False, marker: str = "meta.json") -> Iterator[Path]:
    """Yield an empty temporary directory that becomes ``out`` only if the block succeeds.

    An existing ``out`` is refused unless ``force``; even then only a directory that is empty or
    holds ``marker`` (one of ours) is replaced, so a mistyped ``--out`` cannot wipe a user's files.
    """
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not force:
            raise RnnkitError(f"{out} already exists; pass --force to replace it, or choose another --out")
        if not out.is_dir():
            raise RnnkitError(f"{out} is a file, not an output directory; remove it or choose another --out")
        if any(out.iterdir()) and not (out / marker).exists():
            raise RnnkitError(f"{out} is a directory that rnnkit did not write (no {marker}); choose another --out")
    with replaced_directory(out) as tmp:
        yield tmp


def _previous(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


@contextmanager
def replaced_directory(path: str | Path, *, durable: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path`` that replaces it when the block succeeds,
    by two renames (``path`` → ``.path.old``, the new one → ``path``): a crash leaves the old
    directory or the new one, which ``surviving_directory`` finds. ``durable``: the new files
    reach the disk before the swap."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if durable:
            for f in tmp.iterdir():
                with open(f, "rb") as handle:
                    os.fsync(handle.fileno())
        old = _previous(path)
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def surviving_directory(path: str | Path) -> Path | None:
    """``path``, or the previous version a crash in the middle of ``replaced_directory`` left."""
    path = Path(path)
    for candidate in (path, _previous(path)):
        if candidate.is_dir():
            return candidate
    return None


def cache_dir() -> Path:
    """``$RNNKIT_HOME``, else ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``."""
    if os.environ.get("RNNKIT_HOME"):
        return Path(os.environ["RNNKIT_HOME"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "rnnkit"
    return Path.home() / ".cache" / "rnnkit"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see old or new, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


MANIFEST_BYTES = 1 << 20  # a config.json or meta.json is a few kilobytes


def own_file(directory: Path, name: str, limit: int | None = None) -> Path:
    """``directory/name``, checked before anything reads it: a regular file (not a FIFO, device or
    directory, which would hang or mislead a reader), inside ``directory`` (a symlink may not lead
    out of it), and at most ``limit`` bytes."""
    path = directory / name
    if not (path.exists() or path.is_symlink()):
        raise RnnkitError(f"{directory} has no {name}")
    if path.is_symlink() and not path.resolve().is_relative_to(directory.resolve()):
        raise RnnkitError(f"{path} is a link to a file outside its directory; copy the file in instead")
    try:
        info = path.stat()
    except OSError as e:
        raise RnnkitError(f"{path} cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise RnnkitError(f"{path} is not a regular file; the directory was damaged or made by hand")
    if limit is not None and info.st_size > limit:
        raise RnnkitError(f"{path} is {info.st_size:,} bytes, more than such a file ever holds ({limit:,}); "
                          "the directory was damaged")
    return path


def read_manifest(directory: Path, name: str, fmt: str, version: int | tuple[int, ...], kind: str,
                  how_to_make: str) -> dict:
    """The JSON manifest (``meta.json``, ``config.json``) of one of rnnkit's directories, checked:
    it exists, parses, names ``fmt`` and has ``version`` (or one of them). ``kind`` and
    ``how_to_make`` word the errors."""
    manifest = directory / name
    if not (manifest.exists() or manifest.is_symlink()):
        raise RnnkitError(f"{directory} is not {kind} (no {name}); {how_to_make}")
    try:
        data = json.loads(own_file(directory, name, MANIFEST_BYTES).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested past any config; ValueError:
        # not JSON, or an integer of more digits than Python converts (4,300)
        raise RnnkitError(f"{manifest} is corrupt (not JSON that rnnkit writes); {how_to_make}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise RnnkitError(f"{directory} is not an rnnkit {kind.split(' ', 1)[1]}; {how_to_make}")
    versions = version if isinstance(version, tuple) else (version,)
    if data.get("format_version") not in versions:
        raise RnnkitError(f"{directory} has format version {data.get('format_version')}, this rnnkit reads "
                          f"{' and '.join(map(str, versions))}; {how_to_make}")
    return data
