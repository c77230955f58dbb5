"""Model directories: ``config.json`` + ``vocab.txt`` + ``weights.safetensors``.

One layout for every engine. Weights are stored under canonical names (for the vanilla RNN the
seed's: ``U`` H×C, ``V`` C×H, ``W`` H×H) with safetensors, which holds only arrays: loading a
model never runs code from the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit import __version__
from rnnkit.errors import RnnkitError
from rnnkit.fsutil import atomic_directory, atomic_write_text, read_manifest
from rnnkit.text.vocab import Vocabulary, escape

FORMAT = "rnnkit-model"
FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"


@dataclass
class ModelFiles:
    config: dict[str, Any]
    vocab: Vocabulary
    params: dict[str, np.ndarray]
    path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    from rnnkit.models.numpy.gated import GATES, gated_names

    C, H, D, cell = config["vocab_size"], config["hidden"], config.get("embedding"), config["cell"]
    layers, tie = config.get("layers", 1), config.get("tie", False)
    if cell == "rnn":
        shapes = {"U": (H, D or C), "V": (C, H), "W": (H, H)}
        if D:
            shapes["E"] = (D, C)
        for k in range(2, layers + 1):
            shapes[f"U{k}"] = shapes[f"W{k}"] = (H, H)
    elif cell in GATES:
        G, D = GATES[cell] * H, D or H
        directions = 2 if config.get("bidirectional") else 1
        shapes = {"E": (D, C), "V": (C, H * directions), "c": (C,)}
        for k in range(layers):
            for d in range(directions):
                u, w, bu, bw = gated_names(k, d == 1)
                shapes.update({u: (G, D if k == 0 else H * directions), w: (G, H), bu: (G,), bw: (G,)})
    elif cell == "tutorial-gru":
        shapes = {"E": (H, C), "U": (6, H, H), "W": (6, H, H), "b": (6, H), "V": (C, H), "c": (C,)}
    else:
        raise RnnkitError(f"unknown cell {cell!r} in the model's config.json")
    if tie:
        del shapes["V"]
    return shapes


def save_model(out: str | Path, files: ModelFiles, *, force: bool = False) -> Path:
    """Write a new model directory atomically: it appears whole or not at all."""
    with atomic_directory(out, force=force, marker="config.json") as tmp:
        write_model_files(tmp, files)
    return Path(out)


def write_model_files(directory: str | Path, files: ModelFiles) -> None:
    """Write (or replace) a model's files in ``directory``, each one atomically, config.json last:
    a reader sees the old model or the new one, never a mix of a new config and old weights."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "rnnkit_version": __version__, **files.config}
    weights_tmp = directory / f".{WEIGHTS}.tmp"
    save_file({k: np.ascontiguousarray(v) for k, v in files.params.items()}, str(weights_tmp))
    weights_tmp.replace(directory / WEIGHTS)
    atomic_write_text(directory / "vocab.txt", "".join(escape(t) + "\n" for t in files.vocab.tokens))
    for name, text in files.extra.items():
        atomic_write_text(directory / name, text)
    atomic_write_text(directory / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def load_model(path: str | Path) -> ModelFiles:
    """Read and validate a model directory; any problem is one clear RnnkitError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    config = read_manifest(path, "config.json", FORMAT, FORMAT_VERSION, "a model directory",
                           "train one with `rnnkit train`")
    vocab = Vocabulary.load(path / "vocab.txt", config["unk_token"], size=config["vocab_size"])
    try:
        params = load_file(str(path / WEIGHTS))
    except FileNotFoundError:
        raise RnnkitError(f"{path} has no {WEIGHTS}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise RnnkitError(f"{path}/{WEIGHTS} is corrupt or not a safetensors file ({e})") from None
    shapes = expected_shapes(config)
    for name, shape in shapes.items():
        if name not in params:
            raise RnnkitError(f"{path}/{WEIGHTS} has no weight {name!r} (it has: {', '.join(params)})")
        if params[name].shape != shape:
            raise RnnkitError(f"{path}/{WEIGHTS}: {name} is {params[name].shape}, config.json implies {shape}")
    return ModelFiles(config, vocab, params, path)
