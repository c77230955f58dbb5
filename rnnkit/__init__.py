"""rnnkit: recurrent neural networks over text.

Prepare a corpus, train a language model (a from-scratch numpy reference and a fast PyTorch
engine), then score sentences and generate text::

    import rnnkit
    corpus = rnnkit.prepare("my.txt", "my-corpus")       # sentences, Treebank tokens, top-K vocabulary
    corpus = rnnkit.PreparedCorpus.open("my-corpus")
"""

__version__ = "0.1.0"

from rnnkit.data.corpus import PreparedCorpus  # noqa: E402
from rnnkit.data.prepare import prepare  # noqa: E402
from rnnkit.errors import RnnkitError  # noqa: E402
from rnnkit.text.vocab import Vocabulary  # noqa: E402

__all__ = ["PreparedCorpus", "RnnkitError", "Vocabulary", "prepare", "__version__"]
