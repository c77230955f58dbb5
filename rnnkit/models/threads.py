"""BLAS threads for rnnkit's numpy code: the numpy engine, and the neural cache beside either engine.

On small products — the recurrence's (B×H)·(H×H) — more than one OpenBLAS thread only adds
hand-over costs, and on shared machines it can make them several times slower. The products with
the vocabulary dimension (the output layer and its gradients) are big enough to gain from every
core. So the engine runs on one BLAS thread and widens to all of them around those products;
switching costs a few microseconds. The limits hold only during rnnkit's own calls.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager

_controller = None
_max_threads = 1


def _get_controller():
    global _controller, _max_threads
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
        _max_threads = max([lib.num_threads for lib in _controller.select(user_api="blas").lib_controllers] or [1])
    return _controller


def one_blas_thread() -> AbstractContextManager:
    return _get_controller().limit(limits=1, user_api="blas")


def all_blas_threads() -> AbstractContextManager:
    controller = _get_controller()
    return controller.limit(limits=_max_threads, user_api="blas")


def on_one_blas_thread(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return function(*args, **kwargs)

    return wrapper
