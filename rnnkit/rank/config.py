"""What a ranker is: its config (config.json's ``model`` for kind "ranker"), its weights' schema,
and the options ``rnnkit rank train`` takes — each declared once, here.

``--model`` names a ranker: the ``random``, ``tfidf`` and ``bm25`` baselines, the ``dual-encoder``
as published (an LSTM's last state, σ(cᵀ M r), binary cross-entropy on true and random
responses), and what came after, each one change to it: a ``bidirectional`` encoder,
``max-pooling`` over its states, ``in-batch`` negatives, a ``bag-of-words`` channel beside the
states; ``combined`` takes all four; ``hybrid`` (the default) adds a lexical ranker's score to
combined's, and ``reranker`` reads a hybrid's best candidates again with a matching head.
Options override a preset's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from rnnkit.errors import RnnkitError
from rnnkit.models.network import GATES, Config, Network, dtype_option
from rnnkit.models.schema import ParamSpec, Schema, uniform_bound
from rnnkit.options import check_fields, flag_names, option
from rnnkit.trainer.options import kind_options

RANKERS = ("dual-encoder", "hybrid", "reranker", "tfidf", "bm25", "random")
LEXICAL = ("tfidf", "bm25")  # a hybrid's lexical part
POOLING = ("last", "max")
OBJECTIVES = ("binary", "in-batch")


@dataclass(frozen=True)
class RankerConfig(Config):
    """A response ranker: the dual encoder of Lowe et al. (2015) — one recurrent encoder (``cell``,
    sizes as a ``Network``'s) reads the context into c and the response into r, and the score is
    cᵀ M r (σ of it, the probability that r answers c) — or a baseline: ``tfidf`` (cosine of TF-IDF
    vectors), ``bm25`` (Okapi BM25 of the response for the context's words) or ``random``. A
    ``hybrid`` is a dual encoder whose score adds ``mix`` times a ``lexical`` baseline's (its weight
    fitted on validation after training), less ``prior`` times its score for the average context (a
    prior against responses that score high whatever was said: ``prior.context`` is the mean context
    encoding and ``prior.query`` the mean lexical query of validation contexts, ``prior`` fitted on
    their 1-of-100). A ``reranker`` is a hybrid with a second stage: a
    cross-encoder head (``rnnkit.rank.matching``, ``match_hidden`` units) that reads each of the
    hybrid's ``rerank_top`` best candidates together with the context, its score plus
    ``rerank_mix`` times the hybrid's (fitted on validation); it learns beside the dual encoder,
    on ``match_negatives`` random responses of its batch for each context.

    ``pooling``: the encoding is the last state (both directions' when bidirectional) or the
    maximum of every state over time. ``objective``: ``binary`` cross-entropy on (context,
    response, label) rows, as published, or ``in-batch`` negatives (each context against every
    response of its batch, softmax cross-entropy). Contexts keep their last ``max_context``
    tokens, responses their first ``max_response``. ``bag`` adds a bag-of-words channel to the
    encoding: the L2-normalised sum of the text's word embeddings, beside the pooled states, so that
    a word shared by context and response counts, as it does for TF-IDF.
    """

    kind: ClassVar[str] = "ranker"

    model: str = option(help="the ranker's architecture", choices=RANKERS, cli=False)
    vocab_size: int = option(help="words of the vocabulary", bounds="[2, )", cli=False)
    cell: str = option("lstm", "the encoder's cell", choices=tuple(GATES))
    hidden: int = option(128, "the encoder's units", bounds="[1, )")
    layers: int = option(1, "the encoder's stacked layers", bounds="[1, )")
    embedding: int | None = option(None, "the word embedding's size", bounds="[1, )", shown="the hidden size")
    bidirectional: bool = option(False, "read each text both ways")
    pooling: str = option("last", "an encoding is the last state or the maximum of every state", choices=POOLING)
    objective: str = option("binary", "binary cross-entropy on labelled rows, or in-batch negatives",
                            choices=OBJECTIVES)
    bag: bool = option(False, "a bag-of-words channel beside the encoder's states")
    dropout: float = option(0.3, "dropout on the embedding and between layers, while training", bounds="[0, 1)")
    dtype: str = dtype_option()
    # The UDC's models keep 160; 100 holds the last turns, and trains 1.6x faster.
    max_context: int = option(100, "a context's last tokens kept", bounds="[1, )")
    max_response: int = option(80, "a response's first tokens kept", bounds="[1, )")
    lexical: str = option("tfidf", "the hybrid's lexical part, weighted on validation", choices=LEXICAL)
    mix: float = option(0.0, "a hybrid's weight on its lexical part (fitted)", cli=False)
    prior: float = option(0.0, "a hybrid's weight on each response's score for the average context, subtracted "
                               "(fitted)", bounds="[0, )", cli=False)
    match_hidden: int = option(128, "a reranker's matching head: its hidden units", bounds="[1, )")
    match_negatives: int = option(4, "a reranker's head learns to tell the truth from this many random responses",
                                  bounds="[1, )")
    rerank_top: int = option(20, "a reranker reads again the first stage's best: how many, in a repository",
                             bounds="[1, 1000]")
    rerank_mix: float = option(0.0, "a reranker's weight on its first stage (fitted)", cli=False)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.reranks and self.objective != "in-batch":
            raise RnnkitError("a reranker learns from the hardest responses of each batch: use --objective in-batch")
        if self.learned:
            object.__setattr__(self, "embedding", self.encoder().embedding)

    @property
    def learned(self) -> bool:
        return self.model in ("dual-encoder", "hybrid", "reranker")

    @property
    def reranks(self) -> bool:
        """A second stage reads each candidate with the context (the matching head)."""
        return self.model == "reranker"

    @property
    def width(self) -> int:
        """The width of an encoding (c and r): the pooled states, then the bag of words."""
        encoder = self.encoder()
        return encoder.output_width + (encoder.embedding if self.bag else 0)

    def encoder(self) -> Network:
        """The encoder's recurrent layers, as a network's (no output layer)."""
        return Network(self.cell, self.vocab_size, self.hidden, layers=self.layers, embedding=self.embedding,
                       bidirectional=self.bidirectional, dropout=self.dropout, dtype=self.dtype)

    def schema(self) -> Schema:
        """The dual encoder: the encoder's layers, then ``M``, which starts as the identity (the
        first scores are dot products c·r). TF-IDF: the words' idf; BM25: theirs, and the
        collection's mean length in tokens; a hybrid: the dual encoder's and its lexical part's; a
        reranker: a hybrid's, then its matching head's ``x.`` (pooled features → hidden → score); with a
        ``prior``, the average context's encoding and lexical query."""
        # Fitted statistics: TF-IDF's smoothed idf is at least 1, BM25's at least 0, and every response
        # has a token, so their mean length is at least 1.
        lexical = {"tfidf": {"idf": ParamSpec((self.vocab_size,), values="[1, )")},
                   "bm25": {"idf": ParamSpec((self.vocab_size,), values="[0, )"),
                            "avgdl": ParamSpec((1,), values="[1, )")}}
        if self.model in lexical:
            return lexical[self.model]
        if self.model == "random":
            return {}
        dual = {**self.encoder().layers_schema(), "M": ParamSpec((self.width, self.width), eye=True)}
        # A hybrid's lexical arrays are fitted, not trained: the engines carry them untouched.
        if self.model == "dual-encoder":
            return dual
        schema = {**dual, **lexical[self.lexical]}
        if self.prior:  # fitted after training, when it pays
            schema.update({"prior.context": ParamSpec((self.width,)), "prior.query": ParamSpec((self.vocab_size,))})
        if self.reranks:
            n_in, K = 8 * self.encoder().output_width, self.match_hidden
            schema.update({"x.Q": ParamSpec((n_in, K), uniform_bound(n_in)), "x.q": ParamSpec((K,)),
                           "x.u": ParamSpec((K,), uniform_bound(K))})
        return schema


# ------------------------------------------------------------------------------ training

PRESETS: dict[str, dict[str, Any]] = {
    "random": {"model": "random"},
    "tfidf": {"model": "tfidf"},
    "bm25": {"model": "bm25"},
    "dual-encoder": {"model": "dual-encoder"},
    "bidirectional": {"model": "dual-encoder", "bidirectional": True},
    "max-pooling": {"model": "dual-encoder", "pooling": "max"},
    "in-batch": {"model": "dual-encoder", "objective": "in-batch"},
    "bag-of-words": {"model": "dual-encoder", "bag": True},
    "combined": {"model": "dual-encoder", "bidirectional": True, "pooling": "max", "objective": "in-batch",
                 "bag": True},
    # combined, its score plus a lexical ranker's (--lexical, TF-IDF unless given), weighted on validation
    "hybrid": {"model": "hybrid", "bidirectional": True, "pooling": "max", "objective": "in-batch", "bag": True},
    # a hybrid, its best candidates read again with the context by a matching head trained beside it
    "reranker": {"model": "reranker", "bidirectional": True, "pooling": "max", "objective": "in-batch",
                 "bag": True},
}
DEFAULT_PRESET = "hybrid"  # the best on chit-chat (benchmarks/rank_chitchat.py), level with TF-IDF on the plays
SET_BY_PRESETS = ("bidirectional", "pooling", "objective", "bag")


@dataclass
class RankTrainConfig(kind_options(
        RankerConfig,
        defaults={**dict.fromkeys(SET_BY_PRESETS), "halve_lr": False, "precision": "auto"},
        shown=dict.fromkeys(SET_BY_PRESETS, "the preset's"))):
    """Every option of ``rnnkit rank train``: the model's (``RankerConfig``'s), the loop's, and
    these. The validation loss of a ranker is noisy, so the rate is not halved on a rise; bf16
    where the CPU has it: a step of 134 ms against 172 in fp32 (benchmarks/rank_step.py)."""

    model: str = option(DEFAULT_PRESET, "the ranker", choices=tuple(PRESETS))
    vocab_size: int = option(20000, "words kept (0: all)", bounds="[0, )")
    eval_rows: int = option(1000, "validation rows scored at each evaluation (all: `rank evaluate`)", bounds="[1, )")
    encoder_from: str | None = option(None, "start the encoder from this language model (rnnkit train; same cell "
                                            "and sizes): pretrained words and layers", metavar="LM")
    hard_negatives: int = option(0, "each step, each context also against this many of its hard negatives: its own "
                                    "turns, and responses near it in words (in-batch objective)", bounds="[0, 16]")

    TITLE: ClassVar[str] = "a ranker's training"

    def resolve(self) -> RankTrainConfig:
        """A copy with the preset applied, every 'auto' decided and every value checked."""
        preset = PRESETS[self.model]
        cfg = replace(self, **{name: preset.get(name, getattr(RankerConfig, name)) for name in SET_BY_PRESETS
                               if getattr(self, name) is None})
        model = cfg.model_config(2)  # the model's own checks, before anything is written
        if cfg.vocab_size == 1:
            raise RnnkitError("--vocab-size must be at least 2 (or 0 to keep every token)")
        cfg.check_loop(cfg.cell if model.learned else None)
        if cfg.hard_negatives and cfg.objective != "in-batch":
            raise RnnkitError("--hard-negatives join a batch's in-batch negatives: use --objective in-batch")
        if cfg.grad_accum > 1 and cfg.objective == "in-batch":
            raise RnnkitError("--grad-accum splits each batch, and in-batch negatives would then come from each part "
                              "alone; use --objective binary, or a smaller --batch-size instead")
        return cfg

    def model_config(self, vocab_size: int) -> RankerConfig:
        """The model these options describe: each of its options as given, its architecture the preset's."""
        given = {name: getattr(self, name) for name in flag_names(RankerConfig) if getattr(self, name) is not None}
        return RankerConfig(PRESETS[self.model]["model"], vocab_size, **given)
