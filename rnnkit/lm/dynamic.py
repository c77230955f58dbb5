"""Dynamic evaluation (Krause, Kahembwe, Murray and Renals, 2018): the weights adapt to the text as it is read.

The text is read in order as the model was trained to read it: a model of a stream reads it as one
stream, the state carried across sentences, in segments of ``segment`` tokens; a model of single
sentences reads one sentence at a time, each from a zero state. Each segment (or sentence) is
first predicted — that is its score — and then the model takes one SGD step on it, pulled back
toward its trained weights w₀:

    w ← w − η ∇L(segment) + λ (w₀ − w)

so the model's later predictions know the words, names and style of what came before. No token
is ever scored by a model that has seen it. The learning rate η and the decay λ are fitted on
validation text (``fit``) and saved in the model directory; after a pass the trained weights
come back. Both engines implement the step (``Engine.adapt``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from rnnkit.data.batching import Batch
from rnnkit.errors import RnnkitError
from rnnkit.lm.evaluate import Observation

SEGMENT = 20  # tokens read between two updates
FIT_TOKENS = 20_000  # validation tokens the grid search reads per setting
_RATES = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
_DECAYS = (0.0, 0.001, 0.01)


@dataclass(frozen=True)
class Dynamic:
    """Fitted dynamic evaluation: the learning rate, the decay toward the trained weights, and
    the tokens read between updates."""

    lr: float
    decay: float
    segment: int = SEGMENT

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr >= 0 and 0 <= self.decay < 1):
            raise RnnkitError(f"dynamic evaluation needs a learning rate ≥ 0 and a decay in [0, 1) "
                              f"(got {self.lr}, {self.decay})")
        if isinstance(self.segment, bool) or not isinstance(self.segment, int) or self.segment < 1:
            raise RnnkitError(f"dynamic evaluation's segment must be a whole number of tokens, at least 1 "
                              f"(got {self.segment})")

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str) -> Dynamic:
        try:
            if not all(isinstance(values[k], int | float) and not isinstance(values[k], bool)
                       for k in ("lr", "decay", "segment")):
                raise TypeError("a setting is not a number")
            return cls(float(values["lr"]), float(values["decay"]), values["segment"])
        except (KeyError, TypeError, RnnkitError) as e:
            raise RnnkitError(f"{where}: the fitted dynamic evaluation is damaged ({e}); fit it again with "
                              "`rnnkit fit-dynamic`") from None


def stream_segments(tokens, segment: int) -> Iterator[Batch]:
    """A stream of ids (a split's ``TokenStream``, an array) as one row, ``segment`` steps at a time."""
    predictions = len(tokens) - 1
    for a in range(0, predictions, segment):
        b = min(a + segment, predictions)
        x, y = np.asarray(tokens[a:b], dtype=np.int64)[None], np.asarray(tokens[a + 1:b + 1], dtype=np.int64)[None]
        yield Batch(x, y, np.ones_like(x, dtype=bool))


def adapted_observations(engine, batches: Iterable[Batch], settings: Dynamic, carry: bool) -> Iterator[Observation]:
    """Every prediction of ``batches`` (one row each, in text order: a stream's segments with the
    state carried, or sentences each from a zero state) as (0, log-probabilities, states,
    targets), each batch predicted before the model adapts to it. The trained weights come back
    at the end, also when the reader stops early."""
    h = engine.initial_state(1) if carry else None
    try:
        for batch in batches:
            if settings.lr == 0 and settings.decay == 0:  # the static model, read the same way
                log_probs, states, last = engine.observe(batch.x, batch.y, h)
            else:
                log_probs, states, last = engine.adapt(batch.x, batch.y, batch.mask, h, settings.lr, settings.decay)
            h = last if carry else None
            yield 0, log_probs[batch.mask], states[batch.mask], batch.y[batch.mask]
    finally:
        engine.restore()


def mean_loss(observations: Iterator[Observation], limit: int | None = None) -> tuple[float, int]:
    """The mean loss of the observations (the first ``limit`` or a few more: whole batches) and their count."""
    total, count = 0.0, 0
    for _, log_probs, _, _ in observations:
        total -= float(np.sum(log_probs, dtype=np.float64))
        count += len(log_probs)
        if limit is not None and count >= limit:
            observations.close()  # the weights come back
            break
    return total / max(count, 1), count


@dataclass
class Fit:
    """What fitting found: the settings, and the loss (nats per token) of the static model and of
    the adapted one over the same tokens, read the same way."""

    dynamic: Dynamic
    loss: float
    dynamic_loss: float
    tokens: int

    def as_dict(self) -> dict[str, float | int]:
        return {**self.dynamic.to_dict(), "loss": self.loss, "dynamic_loss": self.dynamic_loss, "tokens": self.tokens}


def fit(engine, read: Callable[[], Iterable[Batch]], carry: bool, *, segment: int = SEGMENT,
        limit: int = FIT_TOKENS) -> Fit:
    """The learning rate (rising until the loss stops falling) and then the decay that minimise the
    mean loss of the first ``limit`` predictions of the batches ``read()`` gives (afresh each time)."""
    Dynamic(0.0, 0.0, segment)  # a segment that is not a whole number of tokens is one clear error

    def loss_of(settings: Dynamic) -> tuple[float, int]:
        return mean_loss(adapted_observations(engine, read(), settings, carry), limit)

    static, count = loss_of(Dynamic(0.0, 0.0, segment))
    if not count:
        raise RnnkitError("no text to fit dynamic evaluation on; give a corpus whose validation split is not empty")
    best, best_loss = Dynamic(0.0, 0.0, segment), static
    for rate in _RATES:
        loss, _ = loss_of(Dynamic(rate, 0.0, segment))
        if not loss < best_loss:
            break
        best, best_loss = Dynamic(rate, 0.0, segment), loss
    if best.lr > 0:
        for decay in _DECAYS[1:]:
            loss, _ = loss_of(Dynamic(best.lr, decay, segment))
            if loss < best_loss:
                best, best_loss = Dynamic(best.lr, decay, segment), loss
    return Fit(best, static, best_loss, count)
