"""The language model as a kind (the seeds' core): train one on a prepared corpus, then score,
rerank, generate and evaluate with it.

* ``config``: its options (``TrainConfig``), the recipes and the budget-sized defaults;
* ``train``: its task for the one trainer (sentence or stream batches), and ``train``;
* ``model``: a trained model ready to use (``LanguageModel``) and ``load``;
* ``evaluate``: loss and perplexity on a split; ``generate``: sampling; ``nbest``: n-best lists.
"""

from rnnkit.lm.config import RECIPES, TrainConfig, make_config
from rnnkit.lm.model import LanguageModel, evaluate_model, load
from rnnkit.lm.train import train

__all__ = ["RECIPES", "LanguageModel", "TrainConfig", "evaluate_model", "load", "make_config", "train"]
