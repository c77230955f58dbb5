"""Model directories: ``config.json`` + ``vocab.txt`` + ``weights.safetensors``, for every kind.

config.json (format 2) names the model's ``kind`` and holds, in sections, that kind's config
(``model``), the text pipeline its corpus was made with (``text``), its special tokens
(``tokens``) and what made it (``training``, ``imported_from``). Weights are stored under the
schema's canonical names with safetensors, which holds only arrays: loading a model never runs
code from the file. Format 1 (rnnkit 0.2.0, one flat object) is read too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._version import __version__
from rnnkit.errors import RnnkitError
from rnnkit.fsutil import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_text,
    own_file,
    read_manifest,
)
from rnnkit.io.card import CARD, invocation, model_card
from rnnkit.kinds import lookup
from rnnkit.models.schema import check_params
from rnnkit.text.pipeline import TextPipeline
from rnnkit.text.vocab import Vocabulary, escape

FORMAT = "rnnkit-model"
FORMAT_VERSION = 2
WEIGHTS = "weights.safetensors"
VOCAB_BYTES = 1 << 28  # 256 MiB: millions of tokens
TEXT_KEYS = {"level": str, "tokenizer": (str, type(None)), "lowercase": bool}  # tokenizer: None for characters


@dataclass
class ModelFiles:
    """A model as it is on disk. ``tokens``: the special tokens (``unk_token``, and for language
    models ``sentence_start``, ``sentence_end``, ``sentence_follows``, ``mask_token``)."""

    config: Any  # the kind's config, e.g. an LMConfig
    text: TextPipeline
    vocab: Vocabulary
    params: dict[str, np.ndarray]
    tokens: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # "training", "imported_from", ...
    path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)  # more files to write beside, by name

    @property
    def kind(self) -> str:
        return self.config.kind


def save_model(out: str | Path, files: ModelFiles, *, force: bool = False) -> Path:
    """Write a new model directory atomically: it appears whole or not at all."""
    with atomic_directory(out, force=force, marker="config.json") as tmp:
        write_model_files(tmp, files, name=Path(out).name)
    return Path(out)


def write_model_files(directory: str | Path, files: ModelFiles, *, name: str | None = None) -> None:
    """Write (or replace) a model's files in ``directory``, each one atomically, config.json last:
    a reader sees the old model or the new one, never a mix of a new config and old weights.
    README.md is its card (``io.card``), ``name`` its title (default: the directory's name)."""
    from safetensors.numpy import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = dict(files.info)
    if "training" in info and invocation.get() is not None:  # how to train it again
        info["training"] = {**info["training"], "command": invocation.get()}
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "rnnkit_version": __version__,
              "kind": files.kind, "model": files.config.to_dict(), "text": files.text.to_dict(),
              "tokens": {"unk_token": files.vocab.unk_token, **files.tokens}, **info}
    atomic_write_bytes(directory / WEIGHTS, save({k: np.ascontiguousarray(v) for k, v in files.params.items()}))
    atomic_write_text(directory / "vocab.txt", "".join(escape(t) + "\n" for t in files.vocab.tokens))
    for extra, text in files.extra.items():
        atomic_write_text(directory / extra, text)
    atomic_write_text(directory / CARD, model_card(config, name or directory.resolve().name))
    atomic_write_text(directory / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def update_info(directory: str | Path, key: str, value: Any) -> None:
    """Set one section of a model directory's config.json (``cache``: a fitted cache) and rewrite
    its card; the weights and vocabulary stay as they are. config.json is replaced atomically."""
    directory = Path(directory)
    config = {**read_config(directory), "format_version": FORMAT_VERSION, key: value}  # a 0.2.0 file: now format 2
    atomic_write_text(directory / CARD, model_card(config, directory.resolve().name))
    atomic_write_text(directory / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")


_V1_MODEL = ("cell", "vocab_size", "hidden", "layers", "embedding", "tie", "bidirectional", "dropout",
             "bptt_truncate", "dtype")
_V1_TEXT = ("level", "tokenizer", "lowercase")
_V1_TOKENS = ("unk_token", "sentence_start", "sentence_end", "sentence_follows", "mask_token")


def _upgrade_v1(config: dict[str, Any]) -> dict[str, Any]:
    """A 0.2.0 config.json (one flat object, language models only) in format 2's sections."""
    sections = {"model": _V1_MODEL, "text": _V1_TEXT, "tokens": _V1_TOKENS}
    upgraded = {"kind": "lm", **{name: {k: config[k] for k in keys if k in config} for name, keys in sections.items()}}
    taken = {k for keys in sections.values() for k in keys}
    return {**upgraded, **{k: v for k, v in config.items() if k not in taken}}


def read_config(path: str | Path) -> dict[str, Any]:
    """A model directory's config.json, checked and in format 2's sections."""
    path = Path(path)
    config = read_manifest(path, "config.json", FORMAT, (1, FORMAT_VERSION), "a model directory",
                           "train one with `rnnkit train`")
    if config["format_version"] == 1:
        config = _upgrade_v1(config)
    for section in ("model", "text", "tokens"):
        if not isinstance(config.get(section), dict):
            raise RnnkitError(f"{path}/config.json is damaged (no {section!r} section); train the model again")
    for key, value in config["text"].items():
        if key not in TEXT_KEYS or not isinstance(value, TEXT_KEYS[key]):
            raise RnnkitError(f"{path}/config.json has a text setting this rnnkit does not know or a wrong value "
                              f"({key} = {json.dumps(value)[:40]}); the file was damaged or edited by hand")
    for key in _V1_TOKENS:  # the special tokens a vocabulary holds; a kind may keep more of its own
        if not isinstance(config["tokens"].get(key), str | None):
            raise RnnkitError(f"{path}/config.json: the special token {key} is not a string; the file was damaged")
    return config


def open_model(path: str | Path, *, engine: str = "auto", device: str = "auto") -> Any:
    """Any model directory, ready to use as its kind makes it (a ``LanguageModel``, a ``Ranker``, a
    ``Seq2Seq``, …) on ``engine`` and ``device``."""
    files = load_model(path)
    return lookup(files.kind).part("open")(files, engine=engine, device=device)


def load_model(path: str | Path, kind: str | None = None) -> ModelFiles:
    """Read and validate a model directory (of ``kind``, when given); any problem is one clear
    RnnkitError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    raw = read_config(path)
    found = raw.get("kind")
    if kind is not None and found != kind:
        made, wanted = lookup(found), lookup(kind)
        raise RnnkitError(f"{path} is a {made.title} (made by `{made.made_by}`), not a {wanted.title}; "
                          f"give a {wanted.title} directory")
    config = lookup(found).part("config").from_dict(raw["model"])
    tokens = dict(raw["tokens"])
    unk = tokens.pop("unk_token", None)
    if not isinstance(unk, str):
        raise RnnkitError(f"{path}/config.json names no unknown token; train the model again")
    vocab = Vocabulary.load(own_file(path, "vocab.txt", VOCAB_BYTES), unk, size=getattr(config, "vocab_size", None))
    try:
        params = load_file(str(own_file(path, WEIGHTS)))
    except FileNotFoundError:
        raise RnnkitError(f"{path} has no {WEIGHTS}") from None
    except (SafetensorError, OSError, ValueError, TypeError) as e:  # TypeError: a dtype numpy lacks (bf16)
        raise RnnkitError(f"{path}/{WEIGHTS} is corrupt, not a safetensors file, or holds numbers of a type "
                          f"rnnkit does not store ({e})") from None
    check_params(config, params, f"{path}/{WEIGHTS}")
    info = {k: v for k, v in raw.items() if k not in ("format", "format_version", "rnnkit_version", "kind", "model",
                                                      "text", "tokens")}
    return ModelFiles(config, TextPipeline.from_dict(raw["text"]), vocab, params, tokens, info, path)
