"""The retrieval-based chatbot (Chatbots, Part 2): rank candidate responses to a context.

* ``dialogue``: plays and chat logs → dialogues; ``build``: dialogues → the UDC's CSV layout;
* ``data``: those CSVs read and turned into ids; ``metrics``: Recall@k with bootstrap intervals;
* ``model``: trained rankers (dual encoder, TF-IDF, random) and ``load_ranker``;
* ``train``: presets, the task the common training loop runs, the baselines' fitting;
* ``evaluate``: Recall@k of a ranker on a split.
"""

from rnnkit.rank.build import build_dataset
from rnnkit.rank.evaluate import evaluate_ranker
from rnnkit.rank.model import Ranker, load_ranker
from rnnkit.rank.train import PRESETS, RankTrainConfig, train_ranker

__all__ = ["PRESETS", "RankTrainConfig", "Ranker", "build_dataset", "evaluate_ranker", "load_ranker",
           "train_ranker"]
