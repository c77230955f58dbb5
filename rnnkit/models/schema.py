"""The parameter schema: a model config → the names, shapes and initialisation of its weights.

One schema for everything that handles weights: initialisation (``init_params``), loading and
validation (``check_params``), both engines, the tutorial's import. Each kind's config says its
own (``config.schema()``; the recurrent network's is in ``rnnkit.models.network``). Names are
canonical — the seed's ``U``, ``V``, ``W`` for the vanilla RNN; for gated cells ``E``, ``U``,
``W``, ``bu``, ``bw`` (gates stacked in PyTorch's order), ``U2``, … for deeper layers, ``…_back``
for the backward direction of an encoder, ``V`` and the output bias ``c`` — and the order of the
schema is the order in which initialisation draws the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.options import interval


@dataclass(frozen=True)
class ParamSpec:
    """One weight: its shape, drawn uniform in ±``bound`` (zeros when 0), then ``shift`` (rows
    a:b, value) added — how an LSTM's forget gate starts 1 higher; ``eye``: the identity matrix;
    ``values``: the interval its every value lies in, where only some values make sense (a
    fitted statistic: BM25's mean length is at least 1), checked when a model is loaded."""

    shape: tuple[int, ...]
    bound: float = 0.0
    shift: tuple[int, int, float] | None = None
    eye: bool = False
    values: str | None = None


Schema = dict[str, ParamSpec]


def uniform_bound(n: int) -> float:
    """1/√n, computed as the seed computes it (``np.sqrt(1. / n)``: bit for bit the same draws)."""
    return float(np.sqrt(1.0 / n))


def param_spec(config: Any) -> Schema:
    """The weights a model of this config has, in initialisation order (its config's schema)."""
    return config.schema()


def init_params(config: Any, rng: np.random.RandomState | np.random.Generator | None = None) -> dict[str, np.ndarray]:
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


def _within(array: np.ndarray, values: str) -> bool:
    low, low_in, high, high_in = interval(values)
    return bool((low is None or np.all(array >= low if low_in else array > low))
                and (high is None or np.all(array <= high if high_in else array < high)))


def check_params(config: Any, params: dict[str, np.ndarray], where: str) -> None:
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
        if spec.values is not None and not _within(params[name], spec.values):
            raise RnnkitError(f"{where}: {name} holds values outside {spec.values}, which it never holds; the weights "
                              "are damaged (train or fit the model again)")
    extra = [name for name in params if name not in schema]
    if extra:
        raise RnnkitError(f"{where} has weights that config.json does not describe: {', '.join(extra)}")
