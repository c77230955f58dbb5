"""The PyTorch engine: the same models as the numpy reference, fast on CPU and CUDA.

    from rnnkit.models.torch import build
    module = build(config, params)          # an nn.Module; forward(...) is the training loss
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rnnkit.errors import RnnkitError
from rnnkit.kinds import lookup
from rnnkit.models.network import Network
from rnnkit.models.schema import init_params
from rnnkit.models.torch.gated import TorchGated
from rnnkit.models.torch.lm import TorchLM
from rnnkit.models.torch.rnn import TorchRNN

MODELS: dict[str, type[TorchLM]] = {"rnn": TorchRNN, "gru": TorchGated, "lstm": TorchGated}

__all__ = ["MODELS", "TorchGated", "TorchLM", "TorchRNN", "build", "network_module"]


def network_module(config: Network) -> TorchLM:
    """A recurrent network's module: its cell's."""
    if config.cell not in MODELS:
        raise RnnkitError(f"the {config.cell} cell runs on the numpy engine only; use --engine numpy (or auto)")
    return MODELS[config.cell](config)


def build(config: Any, params: dict[str, np.ndarray] | None = None, *,
          device: str | torch.device = "cpu", seed: int = 0) -> torch.nn.Module:
    """The torch model of ``config`` (any kind's: its torch engine's ``module``) on ``device``, with
    ``params`` or, without, fresh weights from the shared schema under ``seed`` (the very weights
    the numpy engine draws for that seed)."""
    # A network (a language model's too) is the network's module; another kind's, its torch engine's.
    module = network_module if isinstance(config, Network) else lookup(config.kind).engine("torch").module
    model = module(config)
    model.load_params(init_params(config, np.random.RandomState(seed)) if params is None else params)
    return model.to(device)
