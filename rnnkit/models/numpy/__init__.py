"""The numpy reference engine: readable, vectorised, gradient-checked.

    from rnnkit.models.network import Network
    from rnnkit.models.numpy import build, gradient_check
    model = build(Network("lstm", vocab_size=50, hidden=8, dtype="float64"), seed=0)
"""

from __future__ import annotations

import numpy as np

from rnnkit.models.network import Network
from rnnkit.models.numpy.gated import NumpyGated
from rnnkit.models.numpy.gradcheck import gradient_check
from rnnkit.models.numpy.lm import NumpyLM, softmax
from rnnkit.models.numpy.rnn import NumpyRNN
from rnnkit.models.schema import init_params

MODELS: dict[str, type[NumpyLM]] = {"rnn": NumpyRNN, "gru": NumpyGated, "lstm": NumpyGated}

__all__ = ["MODELS", "NumpyGated", "NumpyLM", "NumpyRNN", "build", "gradient_check", "initialize", "softmax"]


def build(config: Network, params: dict[str, np.ndarray] | None = None, *,
          rng: np.random.RandomState | np.random.Generator | None = None, seed: int | None = None) -> NumpyLM:
    """The numpy model of ``config``: with ``params``, those weights (not copied); without, fresh ones
    from the schema, drawn from ``rng`` (or ``seed``; numpy's global generator when neither)."""
    if params is None:
        params = init_params(config, np.random.RandomState(seed) if rng is None and seed is not None else rng)
    return MODELS[config.cell](config, params)


def initialize(cell: str, vocab_size: int, hidden: int, *, rng=None, dtype: str | np.dtype = np.float64,
               **options) -> NumpyLM:
    """A fresh model in float64 (for checking), with ``Network``'s options: the short way to one."""
    return build(Network(cell, vocab_size, hidden, dtype=np.dtype(dtype).name, **options), rng=rng)
