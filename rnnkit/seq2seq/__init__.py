"""Sequence to sequence with attention (the seeds' attention post): an encoder–decoder that
learns where to look, shown on Folio → modern spelling.

* ``config``: what an encoder–decoder is (``Seq2SeqConfig``, its weights) and its options;
* ``engine``, ``numpy_engine``, ``torch_engine``: the model on each engine;
* ``data``: ``source<TAB>target`` pairs, read and turned into ids and batches;
* ``train``: the task the common training loop runs; ``decode``: greedy and beam search;
* ``model``: a trained model and ``load_seq2seq``; ``metrics``: CER, word accuracy, BLEU;
* ``baselines``: copy and lexicon, and the lexicon's confident spellings over a model's outputs;
* ``evaluate``: all of them on a split, and the attention heatmap;
* ``serve``: its endpoints; ``cli``: its verbs.
"""

from rnnkit.seq2seq.baselines import Lexicon
from rnnkit.seq2seq.config import Seq2SeqConfig, Seq2SeqTrainConfig
from rnnkit.seq2seq.evaluate import evaluate_seq2seq, plot_attention
from rnnkit.seq2seq.model import Seq2Seq, Translation, load_seq2seq
from rnnkit.seq2seq.train import train_seq2seq

__all__ = ["Lexicon", "Seq2Seq", "Seq2SeqConfig", "Seq2SeqTrainConfig", "Translation", "evaluate_seq2seq",
           "load_seq2seq", "plot_attention", "train_seq2seq"]
