"""rnnkit: recurrent neural networks over text.

Prepare a corpus, train a language model (a from-scratch numpy reference and a fast PyTorch
engine), then score sentences and generate text::

    import rnnkit
    corpus = rnnkit.prepare("my.txt", "my-corpus")       # sentences, Treebank tokens, top-K vocabulary
    corpus = rnnkit.PreparedCorpus.open("my-corpus")
    m = rnnkit.load("my-model")                           # after `rnnkit train my-corpus --out my-model`
    m.score(["a sentence ."]); m.generate(n=5, seed=1); m.rerank([["candidate one", "candidate two"]])
"""

__version__ = "0.2.0"

from rnnkit.data.corpus import PreparedCorpus  # noqa: E402
from rnnkit.data.prepare import prepare  # noqa: E402
from rnnkit.errors import RnnkitError  # noqa: E402
from rnnkit.text.vocab import Vocabulary  # noqa: E402
from rnnkit.use.lm import LanguageModel, load  # noqa: E402

__all__ = ["LanguageModel", "PreparedCorpus", "RnnkitError", "Vocabulary", "load", "prepare", "__version__"]
