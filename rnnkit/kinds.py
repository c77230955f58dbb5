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
    config: Ref  # its config class: a frozen dataclass with ``kind``, ``to_dict`` and ``from_dict``
    schema: Ref  # config → its weights' names, shapes and initialisation (``models.schema``)
    engines: Mapping[str, Ref]  # engine name → the class that runs it: (config, params, device=, optimizer=, …)
    train: Ref  # (data, out, **options) → the run's summary: the kind's task, run by the one trainer
    open: Ref  # (ModelFiles, engine=, device=) → the model ready to use (what ``rnnkit.load`` returns)
    serve: Ref  # the server's view of it: a ``rnnkit.serve.models.Served`` with its endpoints
    torch_module: Ref | None = None  # config → the torch engine's ``nn.Module`` (None: no torch engine)
    data: tuple[str, ...] = ()  # files whose presence marks a path as its training data (``of_data``)
    cli: tuple[Ref, ...] = field(default=())  # modules whose ``register(verbs)`` adds its verbs

    def part(self, name: str) -> Any:
        """The part ``name`` ("config", "schema", "train", "open", "serve", "torch_module"), imported."""
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
    from pathlib import Path

    if hasattr(data, "path") and hasattr(data, "vocab"):  # a PreparedCorpus, already open
        return lookup("lm")
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
    config="rnnkit.models.config:LMConfig",
    schema="rnnkit.models.schema:lm_schema",
    engines={"numpy": "rnnkit.models.numpy.engine:NumpyEngine", "torch": "rnnkit.models.torch.engine:TorchEngine"},
    torch_module="rnnkit.models.torch:lm_module",
    train="rnnkit.lm.train:train",
    data=("train.ids.npy",),  # a prepared corpus (rnnkit prepare)
    open="rnnkit.lm.model:LanguageModel",
    serve="rnnkit.serve.models:ServedLM",
    cli=("rnnkit.cli.train", "rnnkit.cli.use"),
))
register(Kind(
    "ranker", "ranker", "rnnkit rank train",
    config="rnnkit.models.config:RankerConfig",
    schema="rnnkit.models.schema:ranker_schema",
    engines={"numpy": "rnnkit.models.numpy.engine:NumpyRankerEngine",
             "torch": "rnnkit.models.torch.engine:TorchRankerEngine"},
    torch_module="rnnkit.models.torch.ranker:TorchDualEncoder",
    train="rnnkit.rank.train:train_ranker",
    data=("train.csv",),  # a ranking dataset (rnnkit rank build)
    open="rnnkit.rank.model:ranker_from_files",
    serve="rnnkit.serve.models:ServedRanker",
    cli=("rnnkit.cli.rank",),
))
register(Kind(
    "seq2seq", "sequence-to-sequence model", "rnnkit seq2seq train",
    config="rnnkit.models.config:Seq2SeqConfig",
    schema="rnnkit.models.schema:seq2seq_schema",
    engines={"numpy": "rnnkit.models.numpy.engine:NumpySeq2SeqEngine",
             "torch": "rnnkit.models.torch.engine:TorchSeq2SeqEngine"},
    torch_module="rnnkit.models.torch.seq2seq:TorchSeq2Seq",
    train="rnnkit.seq2seq.train:train_seq2seq",
    data=("train.tsv", ".tsv"),  # a pairs directory, or one TSV file of pairs
    open="rnnkit.seq2seq.model:Seq2Seq.from_files",
    serve="rnnkit.serve.models:ServedSeq2Seq",
    cli=("rnnkit.cli.seq2seq",),
))
