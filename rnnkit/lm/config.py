"""Training options and recipes: what ``rnnkit train`` takes, checked before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np

from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.lm.evaluate import resolve_mode
from rnnkit.models.config import ADAPTIVE_DIVISOR, LMConfig
from rnnkit.models.engine import resolve_engine
from rnnkit.trainer.options import LoopOptions, fill_choices


@dataclass
class TrainConfig(LoopOptions):
    """Every option of ``rnnkit train``: the model's, then the loop's where the language model's
    defaults differ. The defaults are the recipe we recommend for any corpus (a tied one-layer
    LSTM, Adam, stream mode), sized to the budget (``budget_defaults``); ``RECIPES["seed"]`` is
    the tutorial's own."""

    cell: str = "lstm"  # rnn (the seed's tanh RNN), gru or lstm
    hidden: int | None = None  # None: 256, or wider for a long --max-time (budget_defaults)
    layers: int = 1
    embedding: int | None = None  # size; None: the seed's one-hot input (rnn) or the hidden size (gru, lstm)
    tie: bool | None = None  # the output matrix is the embedding's transpose; None: when the sizes allow (gru, lstm)
    bidirectional: bool = False  # for encoders only: refused by train
    dropout: float | None = None  # on the embedding, between layers and on the output, while training; None:
    # 0.3, or 0.45 for ten minutes or more of words (budget_defaults)
    softmax: str = "full"  # or adaptive: frequent words in a head, rare ones in tail clusters
    cutoffs: list[int] | None = None  # adaptive: where the head and each cluster end; None: from the frequencies
    projection: int | None = None  # the top states projected to this width before the output layer (0: none);
    # None: the budget's, for a vocabulary of at least PROJECTED_VOCABULARY tokens
    mode: str = "stream"  # auto: sentence for words, stream for characters
    bptt: int = 35  # stream mode: steps per window
    bptt_truncate: int = 4  # the numpy engine's per-output truncation (the seed's)
    forget_bias: float = 1.0  # lstm: the forget gate's bias starts this much higher (0: PyTorch's initialisation)
    # The loop's options whose defaults differ for a language model:
    lr: float | None = None  # None: 0.002, or 0.004 and 0.011 for a long --max-time (budget_defaults)
    batch_size: int = 32
    clip: float | None = 0.25  # largest global gradient norm
    weight_decay: float | None = None  # None: 0, or 0.1 (characters 0.3) for a long --max-time (budget_defaults)
    evaluate_every: float = 1.0  # epochs
    decay: str = "auto"  # auto: linear for a long --max-time, else none
    precision: str = "auto"

    # What must match for a checkpoint to be resumed with this config (with LOOP_KEYS).
    MODEL_KEYS = ("cell", "hidden", "layers", "embedding", "tie", "cutoffs", "projection", "dropout", "mode", "bptt",
                  "bptt_truncate", "forget_bias")
    MIN_BATCH_SIZE: ClassVar[int] = 1  # the seed's step: one sentence
    EPOCHS: ClassVar[float] = 20.0

    def model_config(self, vocab_size: int) -> LMConfig:
        """The model these options describe (its checks are the model's: sizes, cell, tie)."""
        return LMConfig(self.cell, vocab_size, self.hidden, layers=self.layers, embedding=self.embedding,
                        tie=bool(self.tie), bidirectional=self.bidirectional, dropout=self.dropout,
                        bptt_truncate=self.bptt_truncate, dtype=self.dtype, cutoffs=tuple(self.cutoffs or ()),
                        projection=self.projection, forget_bias=self.forget_bias)

    def resolve(self, corpus: PreparedCorpus, resumed: dict[str, Any] | None = None) -> TrainConfig:
        """A copy with every 'auto' decided and every value checked. Resuming, what the budget
        decides is taken from the checkpoint's options (``resumed``), whatever this session's budget."""
        cfg = replace(self)
        if cfg.softmax not in ("full", "adaptive"):
            raise RnnkitError(f"unknown --softmax {cfg.softmax!r}; use full or adaptive")
        if cfg.bidirectional:
            raise RnnkitError("a bidirectional model reads the words it is asked to predict, so it cannot be a "
                              "left-to-right language model; --bidirectional is for encoders, not for train")
        cfg.engine, cfg.device = resolve_engine(cfg.engine, cfg.device, cfg.cell)
        fill_choices(cfg, budget_defaults(cfg, len(corpus.vocab)), resumed)
        if cfg.tie is None:
            cfg.tie = cfg.cell != "rnn" and cfg.embedding in (None, cfg.projection or cfg.hidden) \
                and cfg.softmax == "full"
        if cfg.softmax == "full" and cfg.cutoffs:
            raise RnnkitError("--cutoffs is for --softmax adaptive")
        width = cfg.projection or cfg.hidden  # what the output layer reads
        cfg.cutoffs = [] if cfg.softmax == "full" else list(cfg.cutoffs or frequency_cutoffs(corpus, width))
        cfg.model_config(len(corpus.vocab))  # before any output is touched
        cfg.mode = resolve_mode(cfg.mode, corpus)
        if cfg.bptt < 1:
            raise RnnkitError("--bptt must be at least 1")
        cfg.check_loop(cfg.cell)
        return cfg

    def describe(self, vocab_size: int) -> str:
        """One line saying what a resolved config trains, for the user to check before it runs."""
        output = "tied" if self.tie else "untied" + (", adaptive softmax" if self.softmax == "adaptive" else "")
        output += f", projected to {self.projection}" if self.projection else ""
        regime = f", weight decay {self.weight_decay:g}" if self.weight_decay else ""
        regime += f", {self.decay} decay to 0 over the budget" if self.decay != "none" else ""
        return (f"model: {self.cell.upper()} {self.layers}×{self.hidden} ({output}), vocabulary {vocab_size:,}; "
                f"{self.optimizer}, lr {self.lr:g}{regime}; {self.engine} on {self.device}, {self.precision}, "
                f"{self.mode} mode")


# A budget of minutes is best spent on a wider model whose rate falls to 0 by the budget's end, the
# wider the longer; a short one, or a run bounded by epochs, on a narrower one at a steady rate.
# Measured on kjv-lm and tinyshakespeare (README, "Speed"): 512 units lead at 5 minutes (640 trails
# there), 640 at 10; both lose to 256 at 90 s.
# LONG_RUNS: (seconds of --max-time from which, run). The projection pays where the product with
# the vocabulary dominates a step: measured on kjv-lm's 7,677 words at 300 and 600 s
# (docs/guides/training.md); characters' 65 gain nothing from it. Ten minutes are eight epochs of
# kjv-lm, and more dropout pays there (59.0 against 60.1); on characters it does not (1.442 against
# 1.416 nats). Decoupled weight decay of 0.1 pays at ten minutes (kjv-lm 57.7 against 58.6) and
# costs nothing at five (61.9 against 62.0); 0.3 loses at ten (60.1 against 58.0). With all that, a
# higher rate pays at ten minutes on words (kjv-lm: 0.004 58.0–58.3, 0.006 56.2–56.4, 0.008 54.4,
# 0.011 54.4, 0.015 53.8); the recipe takes 0.011, short of the edge of what was tried.
# CHARACTERS: what a small vocabulary's long runs take instead, as measured on tinyshakespeare (the
# rate 0.008 loses there, 4.21 against 4.14). Weight decay pays on characters at ten minutes, more of it
# than on words: validation perplexity 4.13 without, 4.02 at 0.1 — and 3.96 at 0.3 against 4.04 at 0.1 in a
# later pair (1.376 against 1.396 nats); at five minutes 0.3 ties with 0.1 (4.09 against 4.10).
SHORT_RUN = {"hidden": 256, "lr": 0.002, "decay": "none", "projection": 0, "dropout": 0.3, "weight_decay": 0.0}
_FIVE_MINUTES = {**SHORT_RUN, "hidden": 512, "lr": 0.004, "decay": "linear", "projection": 256, "weight_decay": 0.1}
LONG_RUNS = ((300.0, _FIVE_MINUTES), (600.0, {**_FIVE_MINUTES, "hidden": 640, "dropout": 0.45, "lr": 0.011}))
CHARACTERS = {"projection": 0, "dropout": 0.3, "lr": 0.004, "weight_decay": 0.3}
PROJECTED_VOCABULARY = 4096


def budget_defaults(cfg: TrainConfig, vocab_size: int) -> dict[str, Any]:
    """The width, rate, decay, projection, dropout and weight decay that options left out take: with the
    recommended model (where it was measured), the longest of ``LONG_RUNS`` that the --max-time
    reaches; else the short run's. A small vocabulary's long runs (characters) were measured apart:
    its output product is cheap already, so it is not projected, more dropout and a higher rate
    lost there at ten minutes, and more weight decay won (``CHARACTERS``)."""
    measured = cfg.engine == "torch" and cfg.cell == "lstm" and cfg.softmax == "full" and cfg.optimizer == "adam"
    if not measured:
        return SHORT_RUN
    reached = [run for seconds, run in LONG_RUNS if (cfg.max_time or 0) >= seconds]
    if not reached:
        return SHORT_RUN
    return {**reached[-1], **CHARACTERS} if vocab_size < PROJECTED_VOCABULARY else reached[-1]


def frequency_cutoffs(corpus: PreparedCorpus, width: int, coverage: tuple[float, ...] = (0.9, 0.98)) -> list[int]:
    """An adaptive softmax's cutoffs from the training split's word frequencies: the head holds the
    words of 90% of the tokens, a first cluster those up to 98%, a second the rest (as many as
    ``width`` allows). Ids run from frequent to rare, so each range is a run of ids."""
    vocab = len(corpus.vocab)
    counts = np.bincount(corpus.ids("train"), minlength=vocab).astype(np.float64)
    if corpus.end_id is not None:
        counts[corpus.end_id] += corpus.num_sentences("train")  # stream mode predicts each sentence's end
    shares = np.cumsum(counts) / max(counts.sum(), 1.0)
    cutoffs: list[int] = []
    for share in coverage:
        cut = int(np.searchsorted(shares, share)) + 1
        if cutoffs and cut <= cutoffs[-1] or cut > vocab - 1 or width // ADAPTIVE_DIVISOR ** (len(cutoffs) + 1) < 1:
            break
        cutoffs.append(cut)
    return cutoffs or [max(1, vocab // 2)]


# The tutorial's recipe (Part 2): a tanh RNN of 100 units on one-hot words, plain SGD at 0.005,
# one sentence per step, each sentence from a zero state.
RECIPES: dict[str, dict[str, Any]] = {
    "recommended": {},
    "seed": {"cell": "rnn", "hidden": 100, "dropout": 0.0, "optimizer": "sgd", "lr": 0.005, "batch_size": 1,
             "epochs": 1.0, "clip": None, "mode": "auto", "precision": "fp32"},
}


def make_config(recipe: str = "recommended", **options: Any) -> TrainConfig:
    """A TrainConfig: the recipe's settings, then ``options`` over them."""
    if recipe not in RECIPES:
        raise RnnkitError(f"unknown recipe {recipe!r}; use {' or '.join(RECIPES)}")
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"unknown training options: {', '.join(unknown)}")
    return TrainConfig(**{**RECIPES[recipe], **options})
