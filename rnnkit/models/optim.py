"""The optimizers both engines offer, and their settings: SGD, RMSprop (decay 0.9, as the
tutorial's GRU code) and Adam. The numpy engine writes them out; the torch engine uses torch.optim's."""

from __future__ import annotations

from rnnkit.errors import RnnkitError

OPTIMIZERS = ("sgd", "rmsprop", "adam")
RMSPROP_DECAY, RMSPROP_EPS = 0.9, 1e-6
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def check_optimizer(name: str) -> None:
    if name not in OPTIMIZERS:
        raise RnnkitError(f"unknown optimizer {name!r}; use {', '.join(OPTIMIZERS)}")
