"""The PyTorch engine: the same models as the numpy reference, fast on CPU and CUDA.

    from rnnkit.models.torch import build
    module = build(config, params)          # an nn.Module; forward(x, y, mask, h) is the loss
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.errors import RnnkitError
from rnnkit.kinds import lookup
from rnnkit.models.config import LMConfig, RankerConfig, Seq2SeqConfig
from rnnkit.models.schema import init_params
from rnnkit.models.torch.gated import TorchGated
from rnnkit.models.torch.lm import TorchLM
from rnnkit.models.torch.ranker import TorchDualEncoder
from rnnkit.models.torch.rnn import TorchRNN
from rnnkit.models.torch.seq2seq import TorchSeq2Seq

MODELS: dict[str, type[TorchLM]] = {"rnn": TorchRNN, "gru": TorchGated, "lstm": TorchGated}

__all__ = ["MODELS", "TorchDualEncoder", "TorchGated", "TorchLM", "TorchRNN", "TorchSeq2Seq", "build"]


def lm_module(config: LMConfig) -> TorchLM:
    """A language model's module: its cell's."""
    if config.cell not in MODELS:
        raise RnnkitError(f"the {config.cell} cell runs on the numpy engine only; use --engine numpy (or auto)")
    return MODELS[config.cell](config)


def build(config: LMConfig | RankerConfig | Seq2SeqConfig, params: dict[str, np.ndarray] | None = None, *,
          device: str | torch.device = "cpu", seed: int = 0) -> torch.nn.Module:
    """The torch model of ``config`` on ``device``, with ``params`` or, without, fresh weights from
    the shared schema under ``seed`` (the very weights the numpy engine draws for that seed)."""
    model = lookup(config.kind).part("torch_module")(config)
    model.load_params(init_params(config, np.random.RandomState(seed)) if params is None else params)
    return model.to(device)
