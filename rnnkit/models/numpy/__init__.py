"""The numpy reference engine: readable, vectorised, gradient-checked."""

from rnnkit.models.numpy.gradcheck import gradient_check
from rnnkit.models.numpy.rnn import NumpyRNN, pad_batch, softmax

__all__ = ["NumpyRNN", "gradient_check", "pad_batch", "softmax"]
