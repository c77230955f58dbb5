"""The parameter schema: a model config → the names, shapes and initialisation of its weights.

One schema for everything that handles weights: initialisation (``init_params``), loading and
validation (``check_params``), both engines, the tutorial's import. Names are canonical — the
seed's ``U``, ``V``, ``W`` for the vanilla RNN; for gated cells ``E``, ``U``, ``W``, ``bu``,
``bw`` (gates stacked in PyTorch's order), ``U2``, … for deeper layers, ``…_back`` for the
backward direction of an encoder, ``V`` and the output bias ``c`` — and the order of the schema
is the order in which initialisation draws the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.kinds import lookup
from rnnkit.models.config import GATES, LMConfig, RankerConfig, Seq2SeqConfig


@dataclass(frozen=True)
class ParamSpec:
    """One weight: its shape, drawn uniform in ±``bound`` (zeros when 0), then ``shift`` (rows
    a:b, value) added — how an LSTM's forget gate starts 1 higher; ``eye``: the identity matrix."""

    shape: tuple[int, ...]
    bound: float = 0.0
    shift: tuple[int, int, float] | None = None
    eye: bool = False


Schema = dict[str, ParamSpec]


@dataclass(frozen=True)
class Cell:
    """A recurrent cell of the language model: its schema, and which engines run it."""

    schema: Callable[[LMConfig], Schema]
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


def _bound(n: int) -> float:
    """1/√n, computed as the seed computes it (``np.sqrt(1. / n)``: bit for bit the same draws)."""
    return float(np.sqrt(1.0 / n))


def _rnn_schema(c: LMConfig) -> Schema:
    """The seed's initialisation: uniform in ±1/√n, n = incoming connections; U, V, W drawn in the
    seed's order. An embedding (±0.1) and further layers come after."""
    C, H = c.vocab_size, c.hidden
    n_in = c.embedding or C
    schema = {"U": ParamSpec((H, n_in), _bound(n_in))}
    if not c.tie:
        schema["V"] = ParamSpec((C, H), _bound(H))
    schema["W"] = ParamSpec((H, H), _bound(H))
    if c.embedding:
        schema["E"] = ParamSpec((c.embedding, C), 0.1)
    for k in range(1, c.layers):
        u, w = layer_names(k)
        schema[u] = schema[w] = ParamSpec((H, H), _bound(H))
    return schema


def _gated_schema(c: LMConfig) -> Schema:
    """PyTorch's initialisation (every gate weight and bias in ±1/√H), except that an LSTM's forget
    gate bias starts ``forget_bias`` (1) higher, as Keras's: at first the cell keeps most of its
    state, and gradients reach further back. ``E`` in ±0.1, ``V`` in ±1/√H, ``c`` zero."""
    C, H, G = c.vocab_size, c.hidden, GATES[c.cell] * c.hidden
    bound = _bound(H)
    forget = (H, 2 * H, c.forget_bias) if c.cell == "lstm" and c.forget_bias else None
    schema = {"E": ParamSpec((c.embedding, C), 0.1)}
    for k in range(c.layers):
        width = c.embedding if k == 0 else c.output_width
        for d in range(c.directions):
            u, w, bu, bw = gated_names(k, d == 1)
            schema.update({u: ParamSpec((G, width), bound), w: ParamSpec((G, H), bound),
                           bu: ParamSpec((G,), bound, forget), bw: ParamSpec((G,), bound)})
    if c.projection:
        schema["P"] = ParamSpec((c.projection, c.output_width), _bound(c.output_width))
    if c.cutoffs:
        return {**schema, **_adaptive_schema(c)}
    if not c.tie:
        schema["V"] = ParamSpec((C, c.head_width), bound)
    schema["c"] = ParamSpec((C,))
    return schema


def _adaptive_schema(c: LMConfig) -> Schema:
    """The adaptive softmax: the head ``V``, ``c`` (the first ``cutoffs[0]`` words, then one row per
    tail cluster), and each cluster k's projection ``tailk.P`` and output matrix ``tailk.V``."""
    clusters = c.clusters
    schema = {"V": ParamSpec((c.cutoffs[0] + len(clusters), c.head_width), _bound(c.head_width)),
              "c": ParamSpec((c.cutoffs[0] + len(clusters),))}
    for k, (start, end, width) in enumerate(clusters, 1):
        schema[f"tail{k}.P"] = ParamSpec((width, c.head_width), _bound(c.head_width))
        schema[f"tail{k}.V"] = ParamSpec((end - start, width), _bound(width))
    return schema


CELLS: dict[str, Cell] = {"rnn": Cell(_rnn_schema), "gru": Cell(_gated_schema), "lstm": Cell(_gated_schema)}


def register_cell(name: str, cell: Cell) -> None:
    """Make a cell known to the language model's config (``rnnkit.compat`` adds the tutorial's GRU)."""
    CELLS[name] = cell


def lm_schema(config: LMConfig) -> Schema:
    return CELLS[config.cell].schema(config)


def ranker_schema(config: RankerConfig) -> Schema:
    """The dual encoder: the encoder's layers (an LM's without ``V`` and ``c``), then ``M``, which
    starts as the identity (the first scores are dot products c·r). TF-IDF: the words' idf; BM25:
    theirs, and the collection's mean length in tokens; a hybrid: the dual encoder's and its
    lexical part's; a reranker: a hybrid's, then its matching head's ``x.`` (pooled features → hidden → score)."""
    lexical = {"tfidf": {"idf": ParamSpec((config.vocab_size,))},
               "bm25": {"idf": ParamSpec((config.vocab_size,)), "avgdl": ParamSpec((1,))}}
    if config.model in lexical:
        return lexical[config.model]
    if config.model == "random":
        return {}
    encoder = {k: v for k, v in _gated_schema(config.encoder()).items() if k not in ("V", "c")}
    dual = {**encoder, "M": ParamSpec((config.width, config.width), eye=True)}
    # A hybrid's lexical arrays are fitted, not trained: the engines carry them untouched.
    if config.model == "dual-encoder":
        return dual
    schema = {**dual, **lexical[config.lexical]}
    if config.reranks:
        n_in, K = 8 * config.encoder().output_width, config.match_hidden
        schema.update({"x.Q": ParamSpec((n_in, K), _bound(n_in)), "x.q": ParamSpec((K,)),
                       "x.u": ParamSpec((K,), _bound(K))})
    return schema


def seq2seq_schema(config: Seq2SeqConfig) -> Schema:
    """``enc.`` the bidirectional encoder's layers and ``dec.`` the decoder's (each an LM's, without
    its output layer); ``init.`` the decoder's first state from the encoder's; ``att.`` the scores'
    weights; ``out.`` the combination of state and context, then the output layer."""
    def layers(lm: LMConfig, prefix: str) -> Schema:
        return {prefix + k: v for k, v in _gated_schema(lm).items() if k not in ("V", "c")}

    H, D, A, C = config.hidden, config.decoder_hidden, config.attention_size, config.vocab_size
    schema = {**layers(config.encoder(), "enc."), **layers(config.decoder(), "dec."),
              "init.W": ParamSpec((D, H), _bound(H)), "init.b": ParamSpec((D,))}
    if config.input_feeding:
        u = schema["dec.U"]
        schema["dec.U"] = ParamSpec((u.shape[0], config.decoder_input), u.bound)
    if config.attention == "general":
        schema["att.W"] = ParamSpec((D, 2 * H), _bound(2 * H))
    elif config.attention == "additive":
        schema.update({"att.Wq": ParamSpec((A, D), _bound(D)), "att.Wk": ParamSpec((A, 2 * H), _bound(2 * H)),
                       "att.v": ParamSpec((A,), _bound(A))})
    combined = D + (2 * H if config.has_context else 0)
    schema.update({"out.Wc": ParamSpec((D, combined), _bound(combined)), "out.bc": ParamSpec((D,)),
                   "out.V": ParamSpec((C, D), _bound(D)), "out.b": ParamSpec((C,))})
    return schema


def param_spec(config) -> Schema:
    """The weights a model of this config has, in initialisation order (its kind's schema)."""
    return lookup(config.kind).part("schema")(config)


def init_params(config, rng: np.random.RandomState | np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Fresh weights drawn from ``rng`` in schema order (numpy's global generator when None, as the
    seed draws), in the config's dtype. Both engines start from these."""
    rng = np.random if rng is None else rng
    params = {}
    for name, spec in param_spec(config).items():
        value = rng.uniform(-spec.bound, spec.bound, spec.shape) if spec.bound else np.zeros(spec.shape)
        if spec.eye:
            value += np.eye(*spec.shape)
        if spec.shift is not None:
            a, b, shift = spec.shift
            value[a:b] += shift
        params[name] = value.astype(config.dtype)
    return params


WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_params(config, params: dict[str, np.ndarray], where: str) -> None:
    """Every weight the config describes is in ``params`` with its shape, as float32 or float64
    numbers that are all finite, and nothing else is."""
    schema = param_spec(config)
    for name, spec in schema.items():
        if name not in params:
            raise RnnkitError(f"{where} has no weight {name!r} (it has: {', '.join(params) or 'none'})")
        if tuple(params[name].shape) != spec.shape:
            raise RnnkitError(f"{where}: {name} is {tuple(params[name].shape)}, expected {spec.shape}")
        if params[name].dtype not in WEIGHT_DTYPES:
            raise RnnkitError(f"{where}: {name} holds {params[name].dtype} numbers; weights are float32 or float64")
        if not np.isfinite(params[name]).all():
            raise RnnkitError(f"{where}: {name} holds NaN or infinite values; the weights are damaged (train again, "
                              "or go back to a checkpoint)")
    extra = [name for name in params if name not in schema]
    if extra:
        raise RnnkitError(f"{where} has weights that config.json does not describe: {', '.join(extra)}")
