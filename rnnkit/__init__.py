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
"""

from rnnkit import compat  # noqa: F401  (the tutorial's GRU: its imported models load)
from rnnkit._version import __version__
from rnnkit.api import train
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.data.prepare import prepare
from rnnkit.errors import RnnkitError
from rnnkit.io.modeldir import open_model as load
from rnnkit.lm.model import LanguageModel
from rnnkit.rank.model import Ranker, load_ranker
from rnnkit.seq2seq.model import Seq2Seq, load_seq2seq
from rnnkit.text.vocab import Vocabulary

__all__ = ["LanguageModel", "PreparedCorpus", "Ranker", "RnnkitError", "Seq2Seq", "Vocabulary", "load", "load_ranker",
           "load_seq2seq", "prepare", "train", "__version__"]
