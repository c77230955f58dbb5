"""The retrieval-based chatbot (Chatbots, Part 2): rank candidate responses to a context.

* ``dialogue``: plays and chat logs → dialogues; ``build``: dialogues → the UDC's CSV layout;
* ``data``: those CSVs read and turned into ids; ``metrics``: Recall@k with bootstrap intervals;
* ``config``: what a ranker is (``RankerConfig``, its weights), its options and presets;
* ``engine``, ``numpy_engine`` (with ``matching``), ``torch_engine``: the dual encoder on each engine;
* ``model``: trained rankers (dual encoder, TF-IDF, random) and ``load_ranker``;
* ``train``: the task the common training loop runs, the baselines' fitting;
* ``evaluate``: Recall@k of a ranker on a split; ``chat``: a conversation;
* ``serve``: its endpoints; ``cli``: its verbs.
"""

from rnnkit.rank.build import build_dataset
from rnnkit.rank.config import PRESETS, RankerConfig, RankTrainConfig
from rnnkit.rank.evaluate import evaluate_ranker
from rnnkit.rank.model import Ranker, load_ranker
from rnnkit.rank.train import train_ranker

__all__ = ["PRESETS", "RankTrainConfig", "Ranker", "RankerConfig", "build_dataset", "evaluate_ranker", "load_ranker",
           "train_ranker"]
