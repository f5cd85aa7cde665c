"""An exponential moving average (EMA) of the network's weights, the weights a run samples with.

Diffusion models are sampled from an average of their recent weights (DDPM, Ho et al. 2020;
PLONK and most image and geolocation diffusion models since): the trained weights move with
every batch's noise, their average sits nearer the minimum and generalises better. After each
optimiser step ``ema = d * ema + (1 - d) * weights`` with ``d = min(decay, (1 + step) / (10 +
step))``, so the first steps are not held back by the random initial weights.

With an EMA a run's ``checkpoint.safetensors`` and ``best.safetensors`` hold the averaged
weights and validation scores them; ``training_state.pt`` keeps both (training continues from
the trained weights). Only the main process keeps it: it alone validates and saves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


class WeightAverage:
    """The EMA of ``model``'s floating-point parameters and buffers (kept in float32)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.average = {
            name: value.detach().clone().float()
            for name, value in model.state_dict().items()
            if value.is_floating_point()
        }

    def rate(self, step: int) -> float:
        """The decay applied after optimiser step ``step`` (0-based)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold ``model``'s weights after optimiser step ``step`` into the average."""
        keep = self.rate(step)
        state = model.state_dict()
        for name, avg in self.average.items():
            avg.lerp_(state[name].detach().float(), 1.0 - keep)

    def state_dict(self) -> dict[str, Tensor]:
        return {name: value.detach().cpu() for name, value in self.average.items()}

    def load_state_dict(self, saved: dict[str, Tensor]) -> None:
        """Take a saved average; ``ValueError`` names what does not match the network."""
        if set(saved) != set(self.average):
            missing = sorted(set(self.average) - set(saved))
            extra = sorted(set(saved) - set(self.average))
            raise ValueError(
                f"the saved weight average does not fit: missing {missing}, extra {extra}"
            )
        for name, avg in self.average.items():
            if tuple(saved[name].shape) != tuple(avg.shape):
                raise ValueError(
                    f"the saved weight average's {name!r} has shape {tuple(saved[name].shape)}, "
                    f"the network's {tuple(avg.shape)}"
                )
            avg.copy_(saved[name])

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` holding the averaged weights inside the block, its own ones after."""
        state = model.state_dict()
        kept = {name: state[name].detach().clone() for name in self.average}
        with torch.no_grad():
            for name, avg in self.average.items():
                state[name].copy_(avg)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, value in kept.items():
                    state[name].copy_(value)
