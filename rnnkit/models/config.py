"""What a model is, kind by kind: the configuration that config.json holds.

A model directory's config.json names its ``kind`` and holds that kind's config. The language
model (``lm``), the ranker and the encoder–decoder each have theirs; ``rnnkit.kinds`` says which
class reads a kind's.
The parameter schema (``rnnkit.models.schema.param_spec``) turns a config into the names, shapes
and initialisation of its weights: initialisation, loading, validation and both engines read it
there, and nothing infers an architecture from weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from types import UnionType
from typing import Any, ClassVar, Protocol, Union, get_args, get_origin, get_type_hints

from rnnkit.errors import RnnkitError
from rnnkit.kinds import lookup

GATES = {"gru": 3, "lstm": 4}  # gate matrices stacked in U and W: r, z, n (GRU); i, f, g, o (LSTM)
DTYPES = ("float32", "float64")
ADAPTIVE_DIVISOR = 4  # each tail cluster's projection is this many times narrower than the one before


class ModelConfig(Protocol):
    """What every kind's config offers: its kind's name and a JSON form."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LMConfig:
    """A recurrent language model (or, bidirectional, an encoder).

    ``cell`` is the seed's tanh RNN (``rnn``), ``gru`` or ``lstm`` (or a registered cell, such as
    the tutorial's GRU from ``rnnkit.compat``). ``embedding`` is the size of the input embedding:
    None gives the rnn the seed's one-hot input, and gated cells the hidden size. ``tie`` makes
    the output matrix the embedding's transpose. ``activation`` is the rnn's (tanh, the seed's;
    relu shows exploding gradients). ``cutoffs`` (gated cells) make the output layer an adaptive
    softmax (Grave et al., 2017): ids below ``cutoffs[0]`` in the head, each further range of ids
    a tail cluster behind a narrower projection; empty, the full softmax. ``projection`` (gated
    cells, 0: none) projects the top layer's states linearly to that width before the output
    layer (weight ``P``), so the output layer — the product with the whole vocabulary — costs that
    width, not the hidden size's; tied, the embedding is that width too. ``forget_bias`` (lstm) is
    added to the forget gate's bias at initialisation: 1 by default (as Keras does), 0 is PyTorch's.
    """

    kind: ClassVar[str] = "lm"

    cell: str
    vocab_size: int
    hidden: int
    layers: int = 1
    embedding: int | None = None
    tie: bool = False
    bidirectional: bool = False
    dropout: float = 0.0
    bptt_truncate: int = 4
    dtype: str = "float32"
    activation: str = "tanh"
    cutoffs: tuple[int, ...] = ()
    projection: int = 0
    forget_bias: float = 1.0

    def __post_init__(self) -> None:
        from rnnkit.models.schema import CELLS

        object.__setattr__(self, "cutoffs", tuple(self.cutoffs))  # a JSON list, read back

        if self.cell not in CELLS:
            raise RnnkitError(f"unknown cell {self.cell!r}; use {', '.join(c for c in CELLS if CELLS[c].trainable)}")
        if self.projection and (not isinstance(self.projection, int) or self.projection < 1 or not self.gated
                                or self.bidirectional):
            raise RnnkitError("--projection is a width of at least 1, for gru and lstm language models")
        if self.forget_bias != 1.0 and (self.cell != "lstm" or not math.isfinite(self.forget_bias)):
            raise RnnkitError("--forget-bias is a finite number, for lstm models")
        if self.gated and self.embedding is None:
            object.__setattr__(self, "embedding", self.projection or self.hidden)
        if self.vocab_size < 2:
            raise RnnkitError("the vocabulary must hold at least 2 tokens")
        for name in ("hidden", "layers"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"--{name} must be at least 1")
        if self.embedding is not None and self.embedding < 1:
            raise RnnkitError("--embedding must be at least 1 (leave it out for the seed's one-hot input)")
        if not 0.0 <= self.dropout < 1.0:
            raise RnnkitError("--dropout must be at least 0 and below 1")
        if self.bptt_truncate < 0:
            raise RnnkitError("--bptt-truncate must be at least 0")
        if self.dtype not in DTYPES:
            raise RnnkitError(f"--dtype must be float32 or float64 (got {self.dtype!r})")
        if self.activation not in ("tanh", "relu") or (self.activation != "tanh" and self.cell != "rnn"):
            raise RnnkitError("the activation is tanh, or relu for the rnn cell")
        if self.bidirectional and self.cell not in GATES:
            raise RnnkitError("the bidirectional option is for gru and lstm encoders")
        if self.tie and self.embedding != self.head_width:
            # Eᵀ is the output matrix, so the embedding must be as wide as what the output layer reads.
            what = "the projection" if self.projection else "the hidden layer's output"
            raise RnnkitError(f"--tie needs the embedding as wide as {what}: --embedding {self.head_width} "
                              f"(got {self.embedding})")
        if self.cutoffs:
            self._check_cutoffs()

    def _check_cutoffs(self) -> None:
        c = self.cutoffs
        if not self.gated or self.bidirectional:
            raise RnnkitError("the adaptive softmax is for gru and lstm language models")
        if self.tie:
            raise RnnkitError("an adaptive softmax has no one output matrix to tie to the embedding; use --no-tie")
        if any(not isinstance(k, int) for k in c) or list(c) != sorted(set(c)) or c[0] < 1 \
                or c[-1] > self.vocab_size - 1:
            raise RnnkitError(f"--cutoffs must rise strictly, from 1 to at most {self.vocab_size - 1} (the vocabulary "
                              f"has {self.vocab_size} words); got {','.join(map(str, c))}")
        if self.head_width // ADAPTIVE_DIVISOR ** len(c) < 1:
            raise RnnkitError(f"{len(c)} tail clusters need a hidden size of at least {ADAPTIVE_DIVISOR ** len(c)} "
                              "(each cluster's projection is 4 times narrower than the one before)")

    @property
    def clusters(self) -> list[tuple[int, int, int]]:
        """The adaptive softmax's tail clusters: (first id, end id, projection width) each."""
        ends = [*self.cutoffs, self.vocab_size]
        return [(ends[i], ends[i + 1], self.head_width // ADAPTIVE_DIVISOR ** (i + 1))
                for i in range(len(self.cutoffs))]

    @property
    def gated(self) -> bool:
        return self.cell in GATES

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_width(self) -> int:
        """The width of the top layer's output: both directions side by side when bidirectional."""
        return self.hidden * self.directions

    @property
    def head_width(self) -> int:
        """The width the output layer reads: the projection's, or the top layer's output."""
        return self.projection or self.output_width

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LMConfig:
        return config_from_dict(cls, data)


RANKERS = ("dual-encoder", "hybrid", "reranker", "tfidf", "bm25", "random")
LEXICAL = ("tfidf", "bm25")  # a hybrid's lexical part
POOLING = ("last", "max")
OBJECTIVES = ("binary", "in-batch")


@dataclass(frozen=True)
class RankerConfig:
    """A response ranker: the dual encoder of Lowe et al. (2015) — one recurrent encoder (``cell``,
    sizes as ``LMConfig``'s) reads the context into c and the response into r, and the score is
    cᵀ M r (σ of it, the probability that r answers c) — or a baseline: ``tfidf`` (cosine of TF-IDF
    vectors), ``bm25`` (Okapi BM25 of the response for the context's words) or ``random``. A
    ``hybrid`` is a dual encoder whose score adds ``mix`` times a ``lexical`` baseline's (its weight
    fitted on validation after training). A ``reranker`` is a hybrid with a second stage: a
    cross-encoder head (``rnnkit.models.numpy.matching``, ``match_hidden`` units) that reads each
    of the hybrid's ``rerank_top`` best candidates together with the context, its score plus
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

    model: str
    vocab_size: int
    cell: str = "lstm"
    hidden: int = 128
    layers: int = 1
    embedding: int | None = None
    bidirectional: bool = False
    pooling: str = "last"
    objective: str = "binary"
    bag: bool = False
    dropout: float = 0.0
    dtype: str = "float32"
    max_context: int = 160
    max_response: int = 80
    lexical: str = "tfidf"  # a hybrid's lexical part
    mix: float = 0.0  # a hybrid's weight on it
    match_hidden: int = 128  # a reranker's head: its hidden units
    match_negatives: int = 4  # … the random in-batch responses it learns to tell from the truth
    rerank_top: int = 20  # … the first stage's candidates it rescores in a repository
    rerank_mix: float = 0.0  # … the first stage's weight in the final score

    def __post_init__(self) -> None:
        if self.model not in RANKERS:
            raise RnnkitError(f"unknown ranker {self.model!r}; use {', '.join(RANKERS)}")
        if self.lexical not in LEXICAL:
            raise RnnkitError(f"unknown lexical ranker {self.lexical!r}; use {' or '.join(LEXICAL)}")
        if self.pooling not in POOLING:
            raise RnnkitError(f"unknown pooling {self.pooling!r}; use {' or '.join(POOLING)}")
        if self.objective not in OBJECTIVES:
            raise RnnkitError(f"unknown objective {self.objective!r}; use {' or '.join(OBJECTIVES)}")
        if self.max_context < 1 or self.max_response < 1:
            raise RnnkitError("--max-context and --max-response must be at least 1")
        if self.reranks and self.objective != "in-batch":
            raise RnnkitError("a reranker learns from the hardest responses of each batch: use --objective in-batch")
        if self.reranks and min(self.match_hidden, self.match_negatives, self.rerank_top) < 1:
            raise RnnkitError("--match-hidden, --match-negatives and --rerank-top must be at least 1")
        if self.learned:
            if self.cell not in GATES:
                raise RnnkitError(f"the dual encoder's cell is gru or lstm (got {self.cell!r})")
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

    def encoder(self) -> LMConfig:
        """The encoder's recurrent layers, as a language model's (their output layer unused)."""
        return LMConfig(self.cell, self.vocab_size, self.hidden, layers=self.layers, embedding=self.embedding,
                        bidirectional=self.bidirectional, dropout=self.dropout, dtype=self.dtype)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankerConfig:
        return config_from_dict(cls, data)


ATTENTION = ("none", "additive", "dot", "general")


@dataclass(frozen=True)
class Seq2SeqConfig:
    """An encoder–decoder: a bidirectional ``cell`` encoder (``hidden`` units each way) reads the
    source; a one-layer decoder of ``2 × hidden`` units, which starts from the encoder (the
    backward direction's last state, through a tanh layer, as Bahdanau et al. start theirs),
    writes the target. Source and target share one vocabulary (``vocab_size``), each with its own
    embedding (``embedding`` wide).

    ``attention``: ``none`` — the fixed-vector model, whose decoder never looks back; ``dot``
    (sᵀa), ``general`` (sᵀW a) or ``additive`` (vᵀ tanh(Wq s + Wk a), ``attention_size`` wide)
    scores of each source annotation a against the decoder's state s. As in Luong et al. (2015),
    the context vector and the state are combined after each step, tanh(Wc [s; ctx] + bc), and
    the output layer reads that. ``input_feeding`` (Luong et al.) also gives each step's
    combination h̃_t to the decoder's next input, [embedding; h̃_t], so that the decoder knows
    where it looked; the decoder then runs step by step in training too. With ``none`` and input
    feeding the context is fixed: the mean of the annotations, the source vector that reaches every
    step (the output, and through h̃ the next input), as in Cho et al. (2014).
    ``encoder_layers`` stacks bidirectional layers, each reading both directions of the one below
    (as ``nn.GRU``'s); the annotations are the top layer's. ``max_source``/``max_target`` bound the
    lengths in tokens;
    ``length_ratio`` (learned from the training pairs: 99.9% of targets fit) bounds an output to
    that many times its source's length, plus 10 tokens, so that a decoder caught in a loop stops.
    """

    kind: ClassVar[str] = "seq2seq"
    vocab_size: int
    cell: str = "gru"
    hidden: int = 128
    embedding: int | None = None
    attention: str = "general"
    attention_size: int | None = None
    input_feeding: bool = False  # a model saved before the option had none
    encoder_layers: int = 1
    dropout: float = 0.0
    dtype: str = "float32"
    max_source: int = 200
    max_target: int = 220
    length_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION:
            raise RnnkitError(f"unknown attention {self.attention!r}; use {', '.join(ATTENTION)}")
        if self.cell not in GATES:
            raise RnnkitError(f"the encoder–decoder's cell is gru or lstm (got {self.cell!r})")
        if self.attention_size is None:
            object.__setattr__(self, "attention_size", self.decoder_hidden)
        if self.length_ratio is not None and self.length_ratio <= 0:
            raise RnnkitError("the length ratio must be above 0")
        if min(self.max_source, self.max_target, self.attention_size) < 1:
            raise RnnkitError("--max-source, --max-target and --attention-size must be at least 1")
        if self.encoder_layers < 1:
            raise RnnkitError("--encoder-layers must be at least 1")
        object.__setattr__(self, "embedding", self.encoder().embedding)

    @property
    def decoder_hidden(self) -> int:
        return 2 * self.hidden  # as wide as an annotation (both directions): dot scores need it

    @property
    def has_context(self) -> bool:
        """Whether the output layer reads a context vector beside the decoder's state."""
        return self.attention != "none" or self.input_feeding

    @property
    def decoder_input(self) -> int:
        """What the decoder's U multiplies: the embedding, and with input feeding h̃ too."""
        return self.embedding + (self.decoder_hidden if self.input_feeding else 0)

    def encoder(self) -> LMConfig:
        return LMConfig(self.cell, self.vocab_size, self.hidden, layers=self.encoder_layers, embedding=self.embedding,
                        bidirectional=True, dropout=self.dropout, dtype=self.dtype)

    def decoder(self) -> LMConfig:
        return LMConfig(self.cell, self.vocab_size, self.decoder_hidden, embedding=self.embedding,
                        dropout=self.dropout, dtype=self.dtype)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seq2SeqConfig:
        return config_from_dict(cls, data)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """``cls(**data)``, with a clear error for a key it does not know or one it needs."""
    if not isinstance(data, dict):
        raise RnnkitError(f"the {cls.kind} model's config is not a JSON object")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RnnkitError(f"the {cls.kind} model's config has settings this rnnkit does not know: {', '.join(unknown)}")
    hints = get_type_hints(cls)
    for name, value in data.items():
        if not _fits(value, hints[name]):
            raise RnnkitError(f"the {cls.kind} model's config has {name} = {_shown(value)}, which is not "
                              f"{_described(hints[name])}; the file was damaged or edited by hand")
    try:
        return cls(**data)
    except TypeError as e:
        raise RnnkitError(f"the {cls.kind} model's config is incomplete ({e})") from None


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON ``value`` is of the type a config field declares (a list for a tuple)."""
    if get_origin(hint) in (Union, UnionType):
        return any(_fits(value, arg) for arg in get_args(hint))
    if hint is type(None):
        return value is None
    if get_origin(hint) is tuple:
        return isinstance(value, (list, tuple)) and all(_fits(v, get_args(hint)[0]) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _described(hint: Any) -> str:
    if get_origin(hint) in (Union, UnionType):
        return " or ".join(_described(arg) for arg in get_args(hint))
    if get_origin(hint) is tuple:
        return "a list of whole numbers"
    return {int: "a whole number", float: "a finite number", bool: "true or false", str: "a string",
            type(None): "null"}.get(hint, str(hint))


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_config(kind: str, data: dict[str, Any]) -> Any:
    """The config of a model of ``kind`` from its JSON form."""
    return lookup(kind).part("config").from_dict(data)
