"""Training: the options and recipes (``config``), one loop for every model kind (``loop``), its
checkpoints (``checkpoint``) and record (``record``), and the language model's task (``lm``)."""

from rnnkit.train.config import RECIPES, TrainConfig, make_config
from rnnkit.train.lm import train
from rnnkit.train.loop import Interrupted

__all__ = ["RECIPES", "Interrupted", "TrainConfig", "make_config", "train"]
