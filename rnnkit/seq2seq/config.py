"""What an encoder–decoder is: its config (config.json's ``model`` for kind "seq2seq"), its
weights' schema, and the options ``rnnkit seq2seq train`` takes — each declared once, here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from rnnkit.errors import RnnkitError
from rnnkit.models.network import GATES, Config, Network, dtype_option
from rnnkit.models.schema import ParamSpec, Schema, uniform_bound
from rnnkit.options import check_fields, flag_names, option
from rnnkit.trainer.options import fill_choices, kind_options

ATTENTION = ("none", "additive", "dot", "general")


@dataclass(frozen=True)
class Seq2SeqConfig(Config):
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

    vocab_size: int = option(help="tokens of the vocabulary (source and target)", bounds="[2, )", cli=False)
    # PyTorch runs its LSTM through oneDNN on the CPU, its GRU not: about 1.4x the tokens/s here, and a
    # lower CER in the same time (docs/tutorial/attention.md, "What pays in fifteen minutes").
    cell: str = option("lstm", "the encoder's and the decoder's cell", choices=tuple(GATES))
    hidden: int = option(96, "encoder units each way; the decoder has twice as many", bounds="[1, )")
    embedding: int | None = option(64, "the embeddings' size (none: the hidden size)", bounds="[1, )")
    attention: str = option("general", "how the decoder scores each source position (none: a fixed vector)",
                            choices=ATTENTION)
    attention_size: int | None = option(None, "the additive score's hidden layer", bounds="[1, )",
                                        shown="the decoder's")
    input_feeding: bool = option(False, "feed each step's attentional vector to the next step's input "
                                        "(Luong et al.)")  # a model saved before the option had none
    encoder_layers: int = option(1, "bidirectional layers stacked in the encoder", bounds="[1, )")
    dropout: float = option(0.2, "dropout on the embeddings, between layers and before the output, while "
                                 "training", bounds="[0, 1)")
    dtype: str = dtype_option()
    max_source: int = option(200, "longest source in tokens (longer training pairs are left out)", bounds="[1, )")
    max_target: int = option(220, "longest target in tokens", bounds="[1, )")
    length_ratio: float | None = option(None, "an output's longest, as a multiple of its source's length (fitted)",
                                        bounds="(0, )", cli=False)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.attention_size is None:
            object.__setattr__(self, "attention_size", self.decoder_hidden)
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

    def encoder(self) -> Network:
        return Network(self.cell, self.vocab_size, self.hidden, layers=self.encoder_layers, embedding=self.embedding,
                       bidirectional=True, dropout=self.dropout, dtype=self.dtype)

    def decoder(self) -> Network:
        return Network(self.cell, self.vocab_size, self.decoder_hidden, embedding=self.embedding,
                       dropout=self.dropout, dtype=self.dtype)

    def schema(self) -> Schema:
        """``enc.`` the bidirectional encoder's layers and ``dec.`` the decoder's (each a network's,
        without its output layer); ``init.`` the decoder's first state from the encoder's; ``att.``
        the scores' weights; ``out.`` the combination of state and context, then the output layer."""
        H, D, A, C = self.hidden, self.decoder_hidden, self.attention_size, self.vocab_size
        schema = {**{"enc." + k: v for k, v in self.encoder().layers_schema().items()},
                  **{"dec." + k: v for k, v in self.decoder().layers_schema().items()},
                  "init.W": ParamSpec((D, H), uniform_bound(H)), "init.b": ParamSpec((D,))}
        if self.input_feeding:
            u = schema["dec.U"]
            schema["dec.U"] = ParamSpec((u.shape[0], self.decoder_input), u.bound)
        if self.attention == "general":
            schema["att.W"] = ParamSpec((D, 2 * H), uniform_bound(2 * H))
        elif self.attention == "additive":
            schema.update({"att.Wq": ParamSpec((A, D), uniform_bound(D)),
                           "att.Wk": ParamSpec((A, 2 * H), uniform_bound(2 * H)),
                           "att.v": ParamSpec((A,), uniform_bound(A))})
        combined = D + (2 * H if self.has_context else 0)
        schema.update({"out.Wc": ParamSpec((D, combined), uniform_bound(combined)), "out.bc": ParamSpec((D,)),
                       "out.V": ParamSpec((C, D), uniform_bound(D)), "out.b": ParamSpec((C,))})
        return schema


# ------------------------------------------------------------------------------ training

# A run bounded by time is best spent at a rate 4× the loop's that falls to 0 by its end:
# 0.0489 validation CER on the Folio in 5 minutes against 0.0540 at 0.002 held (0.0519 at 0.004
# held; at 0.012 the run diverges), and 0.0518 against 0.0525 test CER in 15 minutes
# (docs/tutorial/attention.md, "What pays in fifteen minutes"); such a run is ended by its time,
# not by a count of epochs (trainer.options.UNBOUNDED_EPOCHS). A run bounded by epochs or steps keeps a
# steady rate, so that it can be stopped and resumed further.
STEADY_RUN = {"lr": 0.002, "decay": "none"}
BUDGET_RUN = {"lr": 0.008, "decay": "linear"}


@dataclass
class Seq2SeqTrainConfig(kind_options(Seq2SeqConfig, epochs=10.0, defaults={"lr": None, "decay": "auto"},
                                      shown={"lr": "0.002; 0.008 with --max-time",
                                             "decay": "auto: linear with --max-time, else none"})):
    """Every option of ``rnnkit seq2seq train``: the model's (``Seq2SeqConfig``'s), the loop's,
    and these."""

    level: str = option("char", "characters or words", choices=("char", "word"))
    vocab_size: int | None = option(None, "tokens kept (0: all)", bounds="[0, )",
                                    shown="every character; 20000 words")
    eval_pairs: int = option(1000, "validation pairs scored at each evaluation", bounds="[1, )")
    decode_pairs: int = option(200, "of those, decoded greedily for the CER", bounds="[0, )")

    TITLE: ClassVar[str] = "an encoder–decoder's training"

    def resolve(self, resumed: dict[str, Any] | None = None) -> Seq2SeqTrainConfig:
        """A copy with every 'auto' decided and every value checked. Resuming, the rate and decay
        that the budget decides are the checkpoint's (``resumed``), whatever this session's budget."""
        cfg = replace(self, vocab_size=(0 if self.level == "char" else 20000) if self.vocab_size is None
                      else self.vocab_size)
        fill_choices(cfg, BUDGET_RUN if cfg.max_time else STEADY_RUN, resumed)
        cfg.model_config(2)  # the model's own checks, before anything is written
        cfg.check_loop(cfg.cell)
        if 0 < cfg.vocab_size < 4:
            raise RnnkitError("--vocab-size must be at least 4 (or 0 to keep every token)")
        return cfg

    def model_config(self, vocab_size: int, length_ratio: float | None = None) -> Seq2SeqConfig:
        """The model these options describe."""
        given = {name: getattr(self, name) for name in flag_names(Seq2SeqConfig)}
        return Seq2SeqConfig(vocab_size, length_ratio=length_ratio, **given)
