"""The language model as a kind (the seeds' core): train one on a prepared corpus, then score,
rerank, generate and evaluate with it.

* ``config``: what it is (``LMConfig``: the recurrent network), its options (``TrainConfig``),
  the recipes and the budget-sized defaults;
* ``engine``, ``numpy_engine``, ``torch_engine``: what use needs of an engine, and the two engines;
* ``train``: its task for the one trainer (sentence or stream batches), and ``train``;
* ``model``: a trained model ready to use (``LanguageModel``) and ``load``;
* ``evaluate``: loss and perplexity on a split; ``generate``: sampling; ``nbest``: n-best lists;
  ``cache``, ``dynamic``: the neural cache and dynamic evaluation;
* ``serve``: its endpoints; ``cli``: its verbs.
"""

from rnnkit.lm.config import RECIPES, LMConfig, TrainConfig, make_config
from rnnkit.lm.model import LanguageModel, evaluate_model, load
from rnnkit.lm.train import train

__all__ = ["RECIPES", "LMConfig", "LanguageModel", "TrainConfig", "evaluate_model", "load", "make_config", "train"]
