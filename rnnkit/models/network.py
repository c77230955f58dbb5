"""The recurrent network every kind is built of: an embedding (or the seed's one-hot input),
stacked recurrent layers of a cell, and — for a language model — the output layer.

A language model is this network (``rnnkit.lm.config.LMConfig``); a ranker's encoder and an
encoder–decoder's two halves are its layers (``encoder()``, ``decoder()`` of their configs).
Each field is declared once, as an option (``rnnkit.options``): the language model's flags of
``rnnkit train``, its Python keywords and the validation of its config.json all read it here.
The parameter schema (``rnnkit.models.schema``) turns a network into the names, shapes and
initialisation of its weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.models.schema import ParamSpec, Schema, uniform_bound
from rnnkit.options import check_fields, from_json, option

GATES = {"gru": 3, "lstm": 4}  # gate matrices stacked in U and W: r, z, n (GRU); i, f, g, o (LSTM)
DTYPES = ("float32", "float64")
ADAPTIVE_DIVISOR = 4  # each tail cluster's projection is this many times narrower than the one before


def registered_cells() -> tuple[str, ...]:
    return tuple(CELLS)


def dtype_option() -> Any:
    """Every kind's ``dtype``, declared here once."""
    return option("float32", "the weights' and the numpy engine's floating-point type", choices=DTYPES)


class Config:
    """What every kind's config offers: a JSON form, read back with every field checked."""

    kind: str  # config.json's "kind" (a kind's config class sets it)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        return from_json(cls, data, f"the {getattr(cls, 'kind', 'network')} model's config")


@dataclass(frozen=True)
class Network(Config):
    """A recurrent network (or, bidirectional, an encoder).

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

    cell: str = option(help="rnn (the seed's tanh RNN), gru or lstm", choices=registered_cells)
    vocab_size: int = option(help="tokens of the vocabulary", bounds="[2, )", cli=False)
    hidden: int = option(help="recurrent units", bounds="[1, )")
    layers: int = option(1, "stacked recurrent layers", bounds="[1, )")
    embedding: int | None = option(None, "embedding size (none: rnn takes one-hot words; gru and lstm the hidden "
                                         "size)", bounds="[1, )")
    tie: bool = option(False, "the output matrix is the embedding's transpose")
    bidirectional: bool = option(False, "read the text both ways (encoders; a language model cannot)")
    dropout: float = option(0.0, "dropout on the embedding, between layers and on the output, while training",
                            bounds="[0, 1)")
    bptt_truncate: int = option(4, "numpy engine, rnn: steps each output's error flows back (the seed's 4)",
                                bounds="[0, )")
    dtype: str = dtype_option()
    activation: str = option("tanh", "the rnn's nonlinearity: tanh, or relu (exploding gradients)",
                             choices=("tanh", "relu"), cli=False)
    cutoffs: tuple[int, ...] = option((), "adaptive softmax: the first id of each tail cluster", metavar="N,N")
    projection: int = option(0, "gru, lstm: project the top states to N before the output layer (and, tied, the "
                                "embedding): the product with the whole vocabulary costs N wide, not the hidden "
                                "size (0: none)", bounds="[0, )", metavar="N")
    forget_bias: float = option(1.0, "lstm: the forget gate's bias starts B higher (0: PyTorch's own "
                                     "initialisation)", metavar="B")

    def __post_init__(self) -> None:
        object.__setattr__(self, "cutoffs", tuple(self.cutoffs))  # a JSON list, read back
        check_fields(self)
        if self.projection and (not self.gated or self.bidirectional):
            raise RnnkitError("--projection is a width of at least 1, for gru and lstm language models")
        if self.forget_bias != 1.0 and (self.cell != "lstm" or not math.isfinite(self.forget_bias)):
            raise RnnkitError("--forget-bias is a finite number, for lstm models")
        if self.gated and self.embedding is None:
            object.__setattr__(self, "embedding", self.projection or self.hidden)
        if self.activation != "tanh" and self.cell != "rnn":
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
        if list(c) != sorted(set(c)) or c[0] < 1 or c[-1] > self.vocab_size - 1:
            raise RnnkitError(f"--cutoffs must rise strictly, from 1 to at most {self.vocab_size - 1} (the vocabulary "
                              f"has {self.vocab_size} words); got {','.join(map(str, c))}")
        if self.head_width // ADAPTIVE_DIVISOR ** len(c) < 1:
            raise RnnkitError(f"{len(c)} tail clusters need a hidden size of at least {ADAPTIVE_DIVISOR ** len(c)} "
                              "(each cluster's projection is 4 times narrower than the one before)")

    def schema(self) -> Schema:
        """Its weights' names, shapes and initialisation: its cell's."""
        return CELLS[self.cell].schema(self)

    def layers_schema(self) -> Schema:
        """The weights of its embedding and recurrent layers alone (a gated encoder's: no output layer)."""
        return {k: v for k, v in gated_schema(self).items() if k not in ("V", "c")}

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


# ------------------------------------------------------------------------------ the weights

@dataclass(frozen=True)
class Cell:
    """A recurrent cell: its schema, and which engines run it."""

    schema: Callable[[Network], Schema]
    engines: tuple[str, ...] = ("numpy", "torch")
    trainable: bool = True


def layer_names(k: int) -> tuple[str, str]:
    """The vanilla RNN's input and recurrent weights of layer ``k`` (0-based): U, W, then U2, W2, …"""
    return ("U", "W") if k == 0 else (f"U{k + 1}", f"W{k + 1}")


def gated_names(k: int, backward: bool = False) -> tuple[str, str, str, str]:
    """A gated layer's weights (``k`` 0-based): U, W, bu, bw, then U2, W2, bu2, bw2, …; ``_back``
    for the backward direction."""
    suffix = (str(k + 1) if k else "") + ("_back" if backward else "")
    return f"U{suffix}", f"W{suffix}", f"bu{suffix}", f"bw{suffix}"


def rnn_schema(c: Network) -> Schema:
    """The seed's initialisation: uniform in ±1/√n, n = incoming connections; U, V, W drawn in the
    seed's order. An embedding (±0.1) and further layers come after."""
    C, H = c.vocab_size, c.hidden
    n_in = c.embedding or C
    schema = {"U": ParamSpec((H, n_in), uniform_bound(n_in))}
    if not c.tie:
        schema["V"] = ParamSpec((C, H), uniform_bound(H))
    schema["W"] = ParamSpec((H, H), uniform_bound(H))
    if c.embedding:
        schema["E"] = ParamSpec((c.embedding, C), 0.1)
    for k in range(1, c.layers):
        u, w = layer_names(k)
        schema[u] = schema[w] = ParamSpec((H, H), uniform_bound(H))
    return schema


def gated_schema(c: Network) -> Schema:
    """PyTorch's initialisation (every gate weight and bias in ±1/√H), except that an LSTM's forget
    gate bias starts ``forget_bias`` (1) higher, as Keras's: at first the cell keeps most of its
    state, and gradients reach further back. ``E`` in ±0.1, ``V`` in ±1/√H, ``c`` zero."""
    C, H, G = c.vocab_size, c.hidden, GATES[c.cell] * c.hidden
    bound = uniform_bound(H)
    forget = (H, 2 * H, c.forget_bias) if c.cell == "lstm" and c.forget_bias else None
    schema = {"E": ParamSpec((c.embedding, C), 0.1)}
    for k in range(c.layers):
        width = c.embedding if k == 0 else c.output_width
        for d in range(c.directions):
            u, w, bu, bw = gated_names(k, d == 1)
            schema.update({u: ParamSpec((G, width), bound), w: ParamSpec((G, H), bound),
                           bu: ParamSpec((G,), bound, forget), bw: ParamSpec((G,), bound)})
    if c.projection:
        schema["P"] = ParamSpec((c.projection, c.output_width), uniform_bound(c.output_width))
    if c.cutoffs:
        return {**schema, **_adaptive_schema(c)}
    if not c.tie:
        schema["V"] = ParamSpec((C, c.head_width), bound)
    schema["c"] = ParamSpec((C,))
    return schema


def _adaptive_schema(c: Network) -> Schema:
    """The adaptive softmax: the head ``V``, ``c`` (the first ``cutoffs[0]`` words, then one row per
    tail cluster), and each cluster k's projection ``tailk.P`` and output matrix ``tailk.V``."""
    clusters = c.clusters
    schema = {"V": ParamSpec((c.cutoffs[0] + len(clusters), c.head_width), uniform_bound(c.head_width)),
              "c": ParamSpec((c.cutoffs[0] + len(clusters),))}
    for k, (start, end, width) in enumerate(clusters, 1):
        schema[f"tail{k}.P"] = ParamSpec((width, c.head_width), uniform_bound(c.head_width))
        schema[f"tail{k}.V"] = ParamSpec((end - start, width), uniform_bound(width))
    return schema


CELLS: dict[str, Cell] = {"rnn": Cell(rnn_schema), "gru": Cell(gated_schema), "lstm": Cell(gated_schema)}


def register_cell(name: str, cell: Cell) -> None:
    """Make a cell known to the network (``rnnkit.compat`` adds the tutorial's GRU)."""
    CELLS[name] = cell
