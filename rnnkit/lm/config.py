"""What a language model is — the recurrent network (``rnnkit.models.network``), config.json's
``model`` for kind "lm" — and the options ``rnnkit train`` takes: the network's, the loop's and
its own, each declared once; the recipes, and the defaults a budget decides."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from rnnkit.data.corpus import PreparedCorpus
from rnnkit.errors import RnnkitError
from rnnkit.lm.evaluate import resolve_mode
from rnnkit.models.engine import ENGINES, resolve_engine
from rnnkit.models.network import ADAPTIVE_DIVISOR, CELLS, Network
from rnnkit.options import build, check_fields, flag_names, option
from rnnkit.trainer.options import fill_choices, kind_options


@dataclass(frozen=True)
class LMConfig(Network):
    """A language model's config: the network, read and written as config.json's kind "lm". Its
    fields are ``rnnkit train``'s model options."""

    kind: ClassVar[str] = "lm"


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


def by_budget(name: str) -> str:
    """What a budget decides for option ``name``, in words: "0.002; 0.004 for a --max-time of 300 s or more"."""
    shown = lambda value: f"{value:g}" if isinstance(value, float) else str(value)  # noqa: E731
    text, last = shown(SHORT_RUN[name]), SHORT_RUN[name]
    for seconds, run in LONG_RUNS:
        if run[name] != last:
            text, last = text + f"; {shown(run[name])} for a --max-time of {seconds:.0f} s or more", run[name]
    return text


@dataclass
class TrainConfig(kind_options(
        LMConfig, exclude=("vocab_size",), epochs=20.0,
        defaults={"cell": "lstm", "hidden": None, "tie": None, "dropout": None, "cutoffs": None, "projection": None,
                  "lr": None, "batch_size": 32, "clip": 0.25, "weight_decay": None, "evaluate_every": 1.0,
                  "decay": "auto", "precision": "auto"},
        shown={"tie": "when the sizes allow, for gru and lstm", "hidden": by_budget("hidden"),
               "cutoffs": "the head covers 90% of the training tokens, a first cluster up to 98%",
               "dropout": by_budget("dropout") + f" ({CHARACTERS['dropout']:g} on characters)",
               "projection": by_budget("projection") + f" (for {PROJECTED_VOCABULARY:,} words or more)",
               "lr": by_budget("lr") + " (the last on words)", "decay": "auto: " + by_budget("decay"),
               "weight_decay": by_budget("weight_decay") + f" ({CHARACTERS['weight_decay']:g} on characters)"})):
    """Every option of ``rnnkit train``: the model's (``LMConfig``'s), the loop's — some with the
    language model's own defaults — and these. The defaults are the recipe we recommend for any
    corpus (a tied one-layer LSTM, Adam, stream mode), sized to the budget (``budget_defaults``);
    ``RECIPES["seed"]`` is the tutorial's own."""

    softmax: str = option("full", "the output layer: full, or adaptive (frequent words in a head, rare ones in "
                                  "clusters behind narrower projections: several times less work for large "
                                  "vocabularies; gru and lstm, untied)", choices=("full", "adaptive"))
    mode: str = option("stream", "stream (the text as one sequence, the state carried), sentence (each sentence "
                                 "alone, padded batches), or auto (sentence for words, stream for characters)",
                       choices=("auto", "sentence", "stream"))
    bptt: int = option(35, "stream mode: steps per window", bounds="[1, )")

    MIN_BATCH_SIZE: ClassVar[int] = 1  # the seed's step: one sentence
    TITLE: ClassVar[str] = "a language model's training"

    def model_config(self, vocab_size: int) -> LMConfig:
        """The model these options describe (its checks are the model's: sizes, cell, tie)."""
        given = {name: getattr(self, name) for name in flag_names(LMConfig) if name != "vocab_size"}
        return LMConfig(**{**given, "tie": bool(self.tie), "cutoffs": tuple(self.cutoffs or ())},
                        vocab_size=vocab_size)

    def resolve(self, corpus: PreparedCorpus, resumed: dict[str, Any] | None = None) -> TrainConfig:
        """A copy with every 'auto' decided and every value checked. Resuming, what the budget
        decides is taken from the checkpoint's options (``resumed``), whatever this session's budget."""
        check_fields(self)
        cfg = replace(self)
        if not CELLS[cfg.cell].trainable:
            raise RnnkitError(f"--cell {cfg.cell} is for models imported from the tutorial; train rnn, gru or lstm")
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


def budget_defaults(cfg: TrainConfig, vocab_size: int) -> dict[str, Any]:
    """The width, rate, decay, projection, dropout and weight decay that options left out take: with the
    recommended model (where it was measured), the longest of ``LONG_RUNS`` that the --max-time
    reaches; else the short run's. A small vocabulary's long runs (characters) were measured apart:
    its output product is cheap already, so it is not projected, more dropout and a higher rate
    lost there at ten minutes, and more weight decay won (``CHARACTERS``)."""
    measured = ENGINES[cfg.engine].fast and cfg.cell == "lstm" and cfg.softmax == "full" and cfg.optimizer == "adam"
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
    """A TrainConfig: the recipe's settings, then ``options`` over them, each checked as its flag is."""
    if recipe not in RECIPES:
        raise RnnkitError(f"--recipe (recipe=) must be one of {', '.join(RECIPES)}; got {recipe!r}")
    return build(TrainConfig, {**RECIPES[recipe], **options}, TrainConfig.TITLE)
