"""The one trainer, the same for every kind: a run (``runner``: placement, checkpoints, the
record, writing the model), its loop (``loop``), its options (``options``), checkpoints
(``checkpoint``), the record (``record``) and many processes (``distributed``). A kind brings a
task: the language model's is in ``rnnkit.lm``, the ranker's in ``rnnkit.rank``, the
encoder–decoder's in ``rnnkit.seq2seq``."""

from rnnkit.trainer.loop import Interrupted, Task
from rnnkit.trainer.options import LoopOptions, kind_options
from rnnkit.trainer.runner import Job, open_trainer, run

__all__ = ["Interrupted", "Job", "LoopOptions", "Task", "kind_options", "open_trainer", "run"]
