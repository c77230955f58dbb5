"""rnnkit: recurrent neural networks over text.

Prepare a corpus, train a language model (a from-scratch numpy reference and a fast PyTorch
engine), then score sentences and generate text; train a ranker or an encoder–decoder the same way::

    import rnnkit
    corpus = rnnkit.prepare("my.txt", "my-corpus")       # sentences, Treebank tokens, top-K vocabulary
    m = rnnkit.train(corpus, "my-model", max_time=300)   # the recommended recipe (or recipe="seed")
    m.score(["a sentence ."]); m.generate(n=5, seed=1); m.rerank([["candidate one", "candidate two"]])
    m = rnnkit.load("my-model")                          # any model directory, as its kind makes it
    r = rnnkit.train("chat-data", "my-ranker")           # a ranking dataset (`rnnkit rank build`)
    r.rank("how now, my lord?", ["well, i thank you.", "the fleet is lost."])
    s = rnnkit.train("folio-pairs", "folio-model")       # pairs (`rnnkit data get folio`)
    s.translate(["Whether 'tis Nobler in the minde to suffer"], beam=5)

``load_ranker`` and ``load_seq2seq`` (and ``rnnkit.lm.load``) open one kind only, and say so.
Each name is imported when it is first used (PEP 562): ``import rnnkit`` imports no kind's package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rnnkit import compat  # noqa: F401  (the tutorial's GRU: its imported models load)
from rnnkit._version import __version__
from rnnkit.errors import RnnkitError

if TYPE_CHECKING:  # what the names below are, for readers and tools; imported on first use
    from rnnkit.api import load, train
    from rnnkit.data.corpus import PreparedCorpus
    from rnnkit.data.prepare import prepare
    from rnnkit.lm.model import LanguageModel
    from rnnkit.rank.model import Ranker, load_ranker
    from rnnkit.seq2seq.model import Seq2Seq, load_seq2seq
    from rnnkit.text.vocab import Vocabulary

_LAZY = {"train": "rnnkit.api", "load": "rnnkit.api", "prepare": "rnnkit.data.prepare",
         "PreparedCorpus": "rnnkit.data.corpus", "Vocabulary": "rnnkit.text.vocab",
         "LanguageModel": "rnnkit.lm.model", "Ranker": "rnnkit.rank.model", "load_ranker": "rnnkit.rank.model",
         "Seq2Seq": "rnnkit.seq2seq.model", "load_seq2seq": "rnnkit.seq2seq.model"}

__all__ = ["LanguageModel", "PreparedCorpus", "Ranker", "RnnkitError", "Seq2Seq", "Vocabulary", "load", "load_ranker",
           "load_seq2seq", "prepare", "train", "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
