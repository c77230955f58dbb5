"""The seed tutorial's interface under its 0.2.0 name; it lives in ``rnnkit.compat.tutorial``."""

from rnnkit.compat.tutorial import RNNNumpy, generate_sentence, train_with_sgd

__all__ = ["RNNNumpy", "generate_sentence", "train_with_sgd"]
