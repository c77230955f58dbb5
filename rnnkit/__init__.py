"""rnnkit: recurrent neural networks over text.

Prepare a corpus, train a language model (a from-scratch numpy reference and a fast PyTorch
engine), then score sentences and generate text::

    import rnnkit
    corpus = rnnkit.prepare("my.txt", "my-corpus")       # sentences, Treebank tokens, top-K vocabulary
    corpus = rnnkit.PreparedCorpus.open("my-corpus")
        summary = train(corpus, "my-model")                    # the recommended recipe (or recipe="seed")
    m = rnnkit.load("my-model")
    m.score(["a sentence ."]); m.generate(n=5, seed=1); m.rerank([["candidate one", "candidate two"]])
"""

from rnnkit import compat  # noqa: F401  (the tutorial's GRU: its imported models load)
from rnnkit._version import __version__
from rnnkit.data.corpus import PreparedCorpus
from rnnkit.data.prepare import prepare
from rnnkit.errors import RnnkitError
from rnnkit.text.vocab import Vocabulary
from rnnkit.use.lm import LanguageModel, load

__all__ = ["LanguageModel", "PreparedCorpus", "RnnkitError", "Vocabulary", "load", "prepare", "__version__"]
