"""The language model on the torch engine: the network's module (``rnnkit.models.torch``)
behind the ``Engine`` protocol, with dynamic evaluation's updates."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.data.batching import Batch
from rnnkit.lm.config import LMConfig
from rnnkit.models.torch import network_module
from rnnkit.models.torch.engine import TorchTrainable


class TorchEngine(TorchTrainable):
    """A language model."""

    config: LMConfig
    module = staticmethod(network_module)
    prior: list[torch.Tensor] | None = None  # the weights before dynamic evaluation's first ``adapt``

    def initial_state(self, batch: int) -> torch.Tensor:
        return self.model.initial_state(batch)

    def target_log_probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.observe(x, y)[0]

    def observe(self, x: np.ndarray, y: np.ndarray, h: torch.Tensor | None = None
                ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        x, y = self._tensors(x, y)
        with torch.no_grad():
            states, last = self.model.run(x, h)
            logits = self.model.head(states)
            picked = logits.gather(2, y[:, :, None])[:, :, 0]
            # log Σ exp, in place: one (B, T, C) array in all, where logsumexp would write another.
            top = logits.amax(dim=-1, keepdim=True)
            normaliser = logits.sub_(top).exp_().sum(dim=-1).log_() + top[..., 0]
            return (picked - normaliser).cpu().numpy(), states.cpu().numpy(), last

    def adapt(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, h: torch.Tensor | None, lr: float,
              decay: float) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        weights = list(self.model.parameters())
        if self.prior is None:
            self.prior = [w.detach().clone() for w in weights]
        x, y, mask = self._tensors(x, y, mask)
        self.model.eval()  # no dropout: the text is read as in evaluation
        states, last = self.model.run(x, None if h is None else h.detach())
        log_probs = torch.log_softmax(self.model.head(states).float(), dim=-1).gather(2, y[:, :, None])[:, :, 0]
        loss = -(log_probs * mask).sum() / mask.sum().clamp(min=1)
        grads = torch.autograd.grad(loss, weights)
        with torch.no_grad():
            for weight, grad, prior in zip(weights, grads, self.prior):
                weight.sub_(grad, alpha=lr).add_(prior - weight, alpha=decay)
        return log_probs.detach().cpu().numpy(), states.detach().cpu().numpy(), last.detach()

    def restore(self) -> None:
        if self.prior is not None:
            with torch.no_grad():
                for weight, prior in zip(self.model.parameters(), self.prior):
                    weight.copy_(prior)
            self.prior = None

    def step(self, tokens: np.ndarray, h: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        probs, _, h = self.step_states(tokens, h)
        return probs, h

    def step_states(self, tokens: np.ndarray, h: torch.Tensor) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        (x,) = self._tensors(tokens[:, None])
        with torch.no_grad():
            states, h = self.model.run(x, h)
            logits = self.model.head(states)
            # torch's fused softmax reads each row once and keeps it in cache: faster than in-place passes.
            return torch.softmax(logits[:, 0], dim=-1).cpu().numpy(), states[:, 0].cpu().numpy(), h

    def _loss(self, batch: Batch, carry: torch.Tensor | None, module: torch.nn.Module | None = None):
        x, y, mask = self._tensors(batch.x, batch.y, batch.mask)
        return (module or self.forward_module)(x, y, mask, carry)
