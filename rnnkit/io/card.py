"""A model card: the README.md of a model directory, written with its config, saying what the
model is, what it was trained on (path, size, checksum), how (the command), how well (the final
metrics, and on which split), and by which rnnkit — the convention people know from model hubs.
It is for people: rnnkit never reads it back."""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# The command line that is running, set by the CLI: the card says how to train the model again.
invocation: ContextVar[str | None] = ContextVar("invocation", default=None)

CARD = "README.md"


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _data_file(data: str, markers: Sequence[str]) -> Path | None:
    """The file of training data that the kind's markers name (``train.csv``, ...), if it is there."""
    path = Path(data)
    if path.is_file():
        return path
    return next((path / m for m in markers if (path / m).is_file()), None)


def _number(value: Any) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def model_card(config: dict[str, Any], name: str) -> str:
    """The card of a model directory named ``name`` whose config.json holds ``config``."""
    from rnnkit.kinds import lookup

    kind = lookup(config["kind"])
    training = config.get("training") or {}
    lines = [f"# {name}", "", f"A {kind.title} made with rnnkit {config.get('rnnkit_version', '?')} "
             f"(`{kind.made_by}`). Load it with `rnnkit.load(\"{name}\")`; serve it with `rnnkit serve {name}`.", ""]
    lines += ["## Model", "", "| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in config["model"].items() if value not in (None, [], {})]
    lines += [f"| text | {', '.join(f'{k} {v}' for k, v in config['text'].items())} |"]
    data = training.get("data") or training.get("corpus")
    if data:
        lines += ["", "## Training data", "", f"- path: `{data}`"]
        found = _data_file(data, kind.data)
        if found is not None:
            lines += [f"- `{found.name}`: {found.stat().st_size:,} bytes, sha256 `{file_digest(found)}`"]
        sizes = {k: training[k] for k in ("tokens", "pairs", "steps", "seconds") if k in training}
        if sizes:
            lines += ["- trained on: " + ", ".join(f"{_number(v)} {k}" for k, v in sizes.items())]
    if config.get("imported_from"):
        lines += ["", "## Origin", "", f"Imported from `{config['imported_from']}`."]
    lines += ["", "## How it was trained", ""]
    command = training.get("command")
    language = "python" if command and command.startswith("rnnkit.") else "bash"  # a call or a command
    lines += [f"```{language}\n{command}\n```" if command else "From Python (the kind's trainer); the options are "
              "in `config.json`, under `training`."]
    metrics = {k: v for k, v in training.items() if k.startswith(("valid_", "train_", "test_"))
               and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if metrics:
        lines += ["", "## Results", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_number(v)} |" for k, v in metrics.items()]
        where = f"`valid_*` on the validation split of the training data, at the {training.get('kept', 'last')} " \
                "evaluation kept; `train_*` on the last training batches"
        lines += ["", f"Measured during training: {where}. Machine: {_machine(training)}."]
    cache = config.get("cache")
    if isinstance(cache, dict) and {"window", "lam", "theta", "loss", "cached_loss"} <= cache.keys():
        lines += ["", "## Neural cache", "",
                  f"Fitted with `rnnkit fit-cache` on the {cache.get('split', 'validation')} split: window "
                  f"{_number(cache['window'])}, λ {_number(cache['lam'])}, θ {cache['theta']:.4g}; loss "
                  f"{_number(cache['loss'])} → {_number(cache['cached_loss'])} nats per token. Used by default "
                  "(`--cache 0` turns it off)."]
    dynamic = config.get("dynamic")
    if isinstance(dynamic, dict) and {"lr", "decay", "segment", "loss", "dynamic_loss"} <= dynamic.keys():
        lines += ["", "## Dynamic evaluation", "",
                  f"Fitted with `rnnkit fit-dynamic` on the {dynamic.get('split', 'validation')} split: learning rate "
                  f"{dynamic['lr']:g}, decay {dynamic['decay']:g}, segments of {dynamic['segment']} tokens; loss "
                  f"{_number(dynamic['loss'])} → {_number(dynamic['dynamic_loss'])} nats per token over its first "
                  f"{_number(dynamic.get('tokens', 0))} tokens. Used on request (`--dynamic`)."]
    return "\n".join(lines) + "\n"


def _machine(training: dict[str, Any]) -> str:
    engine = ", ".join(str(training[k]) for k in ("engine", "device", "precision") if training.get(k))
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs" + (f"; {engine}" if engine else "")
