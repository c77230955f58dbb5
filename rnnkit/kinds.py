"""The model kinds, one record each: the one place that says what a kind is made of.

A model directory's config.json names its ``kind``. Everything that depends on the kind —
reading its config, its weights' schema, building it on an engine, opening it for use, serving
it, its verbs — looks the record up here; nothing else asks which kind a model is. A record names
its parts as ``"module:attribute"`` and imports each when it is first asked for (as Hugging
Face's auto classes do), so this table sits below every package it points into, and a kind's
package is imported only when a model of that kind is used. A kind defined elsewhere passes its
parts themselves. Adding a kind: its package, and one ``register(Kind(...))``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnkit.errors import RnnkitError

Ref = Any  # a part, or "module:attribute" naming it


@dataclass(frozen=True)
class Kind:
    name: str  # config.json's "kind"
    title: str  # in messages: "language model"
    made_by: str  # the command that trains one
    config: Ref  # its config class: a frozen dataclass with ``kind``, ``to_dict``, ``from_dict`` and ``schema()``
    # (its weights' names, shapes and initialisation: ``models.schema``)
    engines: Mapping[str, Ref]  # engine name → the class that runs it: (config, params, device=, optimizer=, …);
    # a torch engine's ``module(config)`` is its ``nn.Module``
    train: Ref  # (data, out, **options) → the run's summary: the kind's task, run by the one trainer
    open: Ref  # (ModelFiles, engine=, device=) → the model ready to use (what ``rnnkit.load`` returns)
    serve: Ref  # the server's view of it: a ``rnnkit.serve.models.Served`` with its endpoints
    options: Ref | None = None  # its training options (a ``LoopOptions`` dataclass): flags, keywords, docs
    data: tuple[str, ...] = ()  # files whose presence marks a path as its training data (``of_data``)
    cli: tuple[Ref, ...] = field(default=())  # modules whose ``register(verbs)`` adds its verbs

    def part(self, name: str) -> Any:
        """The part ``name`` ("config", "train", "open", "serve", "options"), imported."""
        return resolve(getattr(self, name))

    def engine(self, name: str) -> Any:
        """The class that runs this kind on engine ``name``."""
        if name not in self.engines:
            raise RnnkitError(f"a {self.title} runs on the {' and '.join(self.engines)} engine only")
        return resolve(self.engines[name])


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    """Make a kind known: its model directories load, train, serve and answer like any other."""
    _KINDS[kind.name] = kind


def lookup(name: Any) -> Kind:
    """The record of kind ``name``, or a clear error for one this rnnkit does not know."""
    if not isinstance(name, str) or name not in _KINDS:
        raise RnnkitError(f"unknown model kind {name!r}; this rnnkit knows {', '.join(_KINDS)}")
    return _KINDS[name]


def names() -> list[str]:
    return list(_KINDS)


def of_data(data: Any) -> Kind:
    """The kind whose training data ``data`` is, from the files it holds (a directory) or its own
    name (a file): a prepared corpus, a ranking dataset, a pairs directory or TSV file."""
    import os
    from pathlib import Path

    if hasattr(data, "path") and hasattr(data, "vocab"):  # a PreparedCorpus, already open
        return lookup("lm")
    if not isinstance(data, (str, os.PathLike)) or not str(data):
        raise RnnkitError(f"data= must be a path (a str or a pathlib.Path) or a prepared corpus; got {data!r}")
    path = Path(data)
    if not path.exists():
        raise RnnkitError(f"{path} does not exist; give a prepared corpus, a ranking dataset or a pairs directory")
    for kind in _KINDS.values():
        if any((path / name).is_file() if path.is_dir() else path.name.endswith(name) for name in kind.data):
            return kind
    known = "; ".join(f"a {k.title} reads {' or '.join(k.data)}" for k in _KINDS.values() if k.data)
    raise RnnkitError(f"{path}: cannot tell which kind of model it trains ({known}); pass kind=")


def resolve(ref: Ref) -> Any:
    """A part named by ``ref``, imported; a part given itself, as it is."""
    if not isinstance(ref, str):
        return ref
    module, _, path = ref.partition(":")  # "module" alone: the module itself
    found = importlib.import_module(module)
    for attribute in path.split(".") if path else ():  # "Class.method" too
        found = getattr(found, attribute)
    return found


register(Kind(
    "lm", "language model", "rnnkit train",
    config="rnnkit.lm.config:LMConfig",
    engines={"numpy": "rnnkit.lm.numpy_engine:NumpyEngine", "torch": "rnnkit.lm.torch_engine:TorchEngine"},
    train="rnnkit.lm.train:train",
    options="rnnkit.lm.config:TrainConfig",
    data=("train.ids.npy",),  # a prepared corpus (rnnkit prepare)
    open="rnnkit.lm.model:LanguageModel",
    serve="rnnkit.lm.serve:ServedLM",
    cli=("rnnkit.lm.cli",),
))
register(Kind(
    "ranker", "ranker", "rnnkit rank train",
    config="rnnkit.rank.config:RankerConfig",
    engines={"numpy": "rnnkit.rank.numpy_engine:NumpyRankerEngine",
             "torch": "rnnkit.rank.torch_engine:TorchRankerEngine"},
    train="rnnkit.rank.train:train_ranker",
    options="rnnkit.rank.config:RankTrainConfig",
    data=("train.csv",),  # a ranking dataset (rnnkit rank build)
    open="rnnkit.rank.model:ranker_from_files",
    serve="rnnkit.rank.serve:ServedRanker",
    cli=("rnnkit.rank.cli",),
))
register(Kind(
    "seq2seq", "sequence-to-sequence model", "rnnkit seq2seq train",
    config="rnnkit.seq2seq.config:Seq2SeqConfig",
    engines={"numpy": "rnnkit.seq2seq.numpy_engine:NumpySeq2SeqEngine",
             "torch": "rnnkit.seq2seq.torch_engine:TorchSeq2SeqEngine"},
    train="rnnkit.seq2seq.train:train_seq2seq",
    options="rnnkit.seq2seq.config:Seq2SeqTrainConfig",
    data=("train.tsv", ".tsv"),  # a pairs directory, or one TSV file of pairs
    open="rnnkit.seq2seq.model:Seq2Seq.from_files",
    serve="rnnkit.seq2seq.serve:ServedSeq2Seq",
    cli=("rnnkit.seq2seq.cli",),
))
