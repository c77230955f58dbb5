"""A model directory cannot lie: each damage an adversarial probe found is refused in one line,
never a traceback, a hang or a silent wrong answer; a damaged cache is rebuilt."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import struct

import numpy as np
import pytest

import rnnkit
from rnnkit import RnnkitError

WEIGHTS = "weights.safetensors"


@pytest.fixture
def lm(tiny_models, tmp_path):
    copy = tmp_path / "lm"
    shutil.copytree(tiny_models / "lm", copy)
    return copy


def _edit_config(model, change):
    config = json.loads((model / "config.json").read_text())
    change(config)
    (model / "config.json").write_text(json.dumps(config))


def _set(section, key, value):
    def change(config):
        if section is None:
            config[key] = value
        else:
            config[section][key] = value
    return change


def _weights_with_header(model, dtype: str) -> None:
    """weights.safetensors rewritten by hand with every tensor declared as ``dtype`` (e.g. BF16)."""
    from safetensors.numpy import load_file

    params = load_file(str(model / WEIGHTS))
    header, data, offset = {}, b"", 0
    width = {"BF16": 2, "F16": 2}[dtype]
    for name, array in params.items():
        raw = np.zeros(array.size * width, np.uint8).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        data, offset = data + raw, offset + len(raw)
    text = json.dumps(header).encode()
    (model / WEIGHTS).write_bytes(struct.pack("<Q", len(text)) + text + data)


def _weights_as(model, convert) -> None:
    from safetensors.numpy import load_file, save_file

    params = load_file(str(model / WEIGHTS))
    save_file({k: np.ascontiguousarray(convert(v)) for k, v in params.items()}, str(model / WEIGHTS))


CONFIG_DAMAGE = {
    "hidden as a float": (_set("model", "hidden", 4.0), "hidden = 4.0"),
    "hidden as a string": (_set("model", "hidden", "4"), "hidden"),
    "dropout as infinity": (_set("model", "dropout", float("inf")), "dropout"),
    "tie as a number": (_set("model", "tie", 1), "tie"),
    "kind as a list": (_set(None, "kind", ["lm"]), "unknown model kind"),
    "unknown text key": (_set("text", "casing", "upper"), "casing"),
    "lowercase as a string": (_set("text", "lowercase", "yes"), "lowercase"),
    "a token as a list": (_set("tokens", "sentence_end", [None]), "sentence_end"),
}


@pytest.mark.parametrize("damage", CONFIG_DAMAGE, ids=list(CONFIG_DAMAGE))
def test_a_config_with_a_wrong_type_or_an_unknown_key_is_refused(lm, damage):
    change, named = CONFIG_DAMAGE[damage]
    _edit_config(lm, change)
    with pytest.raises(RnnkitError, match=named):
        rnnkit.load(lm)


def test_a_config_nested_past_any_depth_is_refused(lm):
    (lm / "config.json").write_text("[" * 100_000)
    with pytest.raises(RnnkitError, match="not JSON"):
        rnnkit.load(lm)


WEIGHT_DAMAGE = {
    "int64": lambda a: a.astype(np.int64),
    "bool": lambda a: a != 0,
    "uint8": lambda a: a.astype(np.uint8),
    "float16": lambda a: a.astype(np.float16),
    "complex64": lambda a: a.astype(np.complex64),
    "all NaN": lambda a: np.full_like(a, np.nan),
    "one infinity": lambda a: np.where(np.arange(a.size).reshape(a.shape) == 0, np.inf, a).astype(a.dtype),
}


@pytest.mark.parametrize("damage", WEIGHT_DAMAGE, ids=list(WEIGHT_DAMAGE))
def test_weights_of_another_dtype_or_not_finite_are_refused(lm, damage):
    _weights_as(lm, WEIGHT_DAMAGE[damage])
    with pytest.raises(RnnkitError, match="float32 or float64|NaN or infinite"):
        rnnkit.load(lm)


def test_weights_in_bf16_are_refused_in_one_line(lm):
    _weights_with_header(lm, "BF16")
    with pytest.raises(RnnkitError, match=WEIGHTS):
        rnnkit.load(lm)


def test_a_fifo_or_a_device_in_place_of_a_file_is_refused_without_reading_it(lm):
    (lm / "vocab.txt").unlink()
    os.mkfifo(lm / "vocab.txt")  # reading it would wait for a writer forever
    with pytest.raises(RnnkitError, match="not a regular file"):
        rnnkit.load(lm)
    (lm / "vocab.txt").unlink()
    (lm / "vocab.txt").symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(RnnkitError, match="outside its directory|not a regular file"):
        rnnkit.load(lm)


def test_a_link_out_of_the_directory_is_refused_and_one_inside_it_is_read(lm, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(lm / WEIGHTS, outside)
    (lm / WEIGHTS).symlink_to(outside)
    with pytest.raises(RnnkitError, match="outside its directory"):
        rnnkit.load(lm)
    (lm / WEIGHTS).unlink()
    shutil.move(outside, lm / "kept.safetensors")
    (lm / WEIGHTS).symlink_to("kept.safetensors")
    assert rnnkit.load(lm).config.hidden == 4


def test_an_oversized_config_is_refused_before_it_is_read(lm):
    with open(lm / "config.json", "a") as f:
        f.write(" " * (1 << 20))
    with pytest.raises(RnnkitError, match="more than such a file ever holds"):
        rnnkit.load(lm)


def test_the_cli_says_what_is_wrong_in_one_line(lm, run_cli):
    _weights_as(lm, WEIGHT_DAMAGE["int64"])
    status, out, err = run_cli("generate", lm, "-n", "1")
    assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "int64" in err


@pytest.mark.parametrize("damage", ["wrong shape", "garbage", "pickle", "nan", "a huge header", "cache a file",
                                    "cache a link"])
def test_a_damaged_response_cache_is_rebuilt(tiny_models, tmp_path, damage, capsys):
    from rnnkit.rank.data import training_responses

    ranker_dir = tmp_path / "ranker"
    shutil.copytree(tiny_models / "ranker", ranker_dir)
    shutil.rmtree(ranker_dir / "cache", ignore_errors=True)  # one another test's server wrote: built here, as rebuilt
    repository = training_responses(tiny_models / "rank-data")
    context = "ann: where is the crown ? __eou__ __eot__"
    expected = rnnkit.load(ranker_dir).rank_repository(context, repository, top=3)
    (cache,) = (ranker_dir / "cache").iterdir()
    good = np.load(cache)
    if damage == "wrong shape":
        np.save(cache, good[:-1])
    elif damage == "garbage":
        cache.write_bytes(b"\x93NUMPY garbage")
    elif damage == "pickle":
        cache.write_bytes(pickle.dumps(good))
    elif damage == "nan":
        np.save(cache, np.full_like(good, np.nan))
    elif damage == "a huge header":  # a header that claims 10¹² rows: nothing of that size may be allocated
        header = {"descr": good.dtype.str, "fortran_order": False, "shape": (10**12, good.shape[1])}
        with open(cache, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(good.tobytes())
    elif damage == "cache a file":
        shutil.rmtree(ranker_dir / "cache")
        (ranker_dir / "cache").write_text("not a directory\n", encoding="utf-8")
    else:  # a link to a directory elsewhere: nothing may be written there
        shutil.rmtree(ranker_dir / "cache")
        (tmp_path / "elsewhere").mkdir()
        (ranker_dir / "cache").symlink_to(tmp_path / "elsewhere")
    capsys.readouterr()
    assert rnnkit.load(ranker_dir).rank_repository(context, repository, top=3) == expected
    (cache,) = (ranker_dir / "cache").iterdir()
    np.testing.assert_array_equal(np.load(cache, allow_pickle=False), good)
    assert (ranker_dir / "cache").is_dir() and not (ranker_dir / "cache").is_symlink()
    from rnnkit.rank.model import _cached_array

    read = _cached_array(cache, good.shape, str(good.dtype))  # as a later run reads it: writable, or torch warns
    assert read is not None and read.flags.writeable and np.array_equal(read, good)
    if damage.startswith("cache a"):
        assert "was not a directory of the model's own; made it again" in capsys.readouterr().err
        assert not (damage == "cache a link" and any((tmp_path / "elsewhere").iterdir()))



def _lexical_ranker(tmp_path, tiny_models, model):
    from rnnkit.rank import train_ranker

    out = tmp_path / model
    train_ranker(tiny_models / "rank-data", out, model=model, log=lambda _: None, progress=False)
    return out


def _weight_changed(model, name, change) -> None:
    from safetensors.numpy import load_file, save_file

    params = load_file(str(model / WEIGHTS))
    save_file({**params, name: np.ascontiguousarray(change(params[name]))}, str(model / WEIGHTS))


@pytest.mark.parametrize("model, name, damage, says", [
    ("bm25", "avgdl", lambda a: a * 0, "avgdl holds values outside [1, )"),
    ("bm25", "avgdl", lambda a: -a, "avgdl holds values outside [1, )"),
    ("bm25", "avgdl", lambda a: a * 0 + 1e-300, "avgdl holds values outside [1, )"),
    ("bm25", "idf", lambda a: -a, "idf holds values outside [0, )"),
    ("tfidf", "idf", lambda a: -a, "idf holds values outside [1, )"),
])
def test_damaged_ranker_statistics_are_refused(tmp_path, tiny_models, model, name, damage, says):
    """A lexical ranker's fitted statistics are weights like any other, and only some values are
    ones it ever fits: an avgdl of 0 made every BM25 score 0, a negated idf turned the ranking over."""
    out = _lexical_ranker(tmp_path, tiny_models, model)
    rnnkit.load(out)  # as fitted, it loads
    _weight_changed(out, name, damage)
    with pytest.raises(RnnkitError, match=re.escape(says)):
        rnnkit.load(out)


def test_a_config_json_beyond_what_rnnkit_writes_is_refused(tmp_path, tiny_models):
    out = _lexical_ranker(tmp_path, tiny_models, "tfidf")
    _edit_config(out, _set("model", "rerank_top", 1_000_000_000))  # each query would read the whole repository
    with pytest.raises(RnnkitError, match="rerank_top = 1000000000, which is not a whole number in \\[1, 1000\\]"):
        rnnkit.load(out)
    text = (out / "config.json").read_text().replace("1000000000", "1" * 5000)  # beyond Python's int conversion
    (out / "config.json").write_text(text)
    with pytest.raises(RnnkitError, match="config.json is corrupt"):
        rnnkit.load(out)
