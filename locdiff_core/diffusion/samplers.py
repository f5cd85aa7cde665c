"""Samplers of the reverse process behind one small contract (DDPM and DDIM).

A sampler holds no network. ``set_timesteps(n)`` picks ``n`` of the ``T`` training timesteps
(``.timesteps``, descending, ending at 0); ``step(x0, eps, t, x_t)`` returns the sample at the
next timestep from the network's clean-latent and noise estimates at ``t``. With ``n < T`` both
samplers run on the respaced process (the same ``abar`` at the kept timesteps), so DDPM can
also take fewer steps than it was trained with.

- :class:`DDPMSampler`: ancestral sampling from the posterior ``q(x_prev | x_t, x0)``
  (Ho et al. 2020; the paper's 100 steps).
- :class:`DDIMSampler`: Song et al. 2021; ``eta = 0`` is deterministic and works with few
  steps, ``eta = 1`` matches DDPM's variance.

:func:`sample` runs a network through a sampler, with optional classifier-free guidance, a
progress callable and a cancel callable; :func:`posterior_latent` is the network's one-step
estimate from pure noise (the posterior of the location given the condition).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from locdiff_core.diffusion.gaussian import GaussianDiffusion
from locdiff_core.engines import SamplerKind


class CancelledError(Exception):
    """Raised by :func:`sample` (and the predictor) when the cancel callable returns True."""


class Sampler:
    """Shared timestep bookkeeping; subclasses implement :meth:`step`."""

    def __init__(self, alphas_cumprod: Tensor) -> None:
        self.alphas_cumprod = alphas_cumprod.to(torch.float64)
        self.num_train_steps = alphas_cumprod.numel()
        self._timesteps: Tensor | None = None

    def set_timesteps(self, num_steps: int) -> None:
        T = self.num_train_steps
        if not 1 <= num_steps <= T:
            raise ValueError(
                f"num_steps must be between 1 and the {T} training steps, got {num_steps}"
            )
        steps = torch.linspace(T - 1, 0, num_steps, dtype=torch.float64).round().long()
        self._timesteps = torch.unique_consecutive(steps)

    @property
    def timesteps(self) -> Tensor:
        if self._timesteps is None:
            raise RuntimeError("call set_timesteps(n) before sampling")
        return self._timesteps

    def _abar_pair(self, t: int) -> tuple[float, float]:
        steps = self.timesteps.tolist()
        i = steps.index(t)
        prev = steps[i + 1] if i + 1 < len(steps) else -1
        abar = float(self.alphas_cumprod[t])
        abar_prev = float(self.alphas_cumprod[prev]) if prev >= 0 else 1.0
        return abar, abar_prev

    def step(
        self, x0: Tensor, eps: Tensor, t: int, x_t: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        raise NotImplementedError


class DDPMSampler(Sampler):
    def step(self, x0, eps, t, x_t, generator=None):
        abar, abar_prev = self._abar_pair(t)
        beta = 1.0 - abar / abar_prev
        mean = (abar_prev**0.5 * beta / (1 - abar)) * x0 + (
            (1 - beta) ** 0.5 * (1 - abar_prev) / (1 - abar)
        ) * x_t
        if abar_prev >= 1.0:
            return mean
        var = beta * (1 - abar_prev) / (1 - abar)
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        return mean + var**0.5 * noise


class DDIMSampler(Sampler):
    def __init__(self, alphas_cumprod: Tensor, eta: float = 0.0) -> None:
        super().__init__(alphas_cumprod)
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.eta = eta

    def step(self, x0, eps, t, x_t, generator=None):
        abar, abar_prev = self._abar_pair(t)
        sigma = self.eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) ** 0.5
        direction = max(1 - abar_prev - sigma**2, 0.0) ** 0.5
        out = abar_prev**0.5 * x0 + direction * eps
        if sigma > 0:
            noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            out = out + sigma * noise
        return out


def make_sampler(
    kind: SamplerKind | str, diffusion: GaussianDiffusion, eta: float = 0.0
) -> Sampler:
    kind = SamplerKind(kind)
    if kind is SamplerKind.DDPM:
        return DDPMSampler(diffusion.alphas_cumprod)
    return DDIMSampler(diffusion.alphas_cumprod, eta=eta)


@torch.no_grad()
def sample(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    sampler: Sampler,
    cond: Tensor,
    *,
    num_steps: int,
    generator: torch.Generator | None = None,
    guidance_scale: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Tensor:
    """Clean latents ``[B, D]`` for conditions ``cond [B, C]``.

    ``guidance_scale`` ``w != 1`` mixes conditional and unconditional estimates,
    ``x0 = x0_uncond + w (x0_cond - x0_uncond)`` (needs a model trained with condition
    dropout). ``progress(done, total)`` is called after every step; when ``cancel()`` returns
    True, :class:`CancelledError` is raised.
    """
    B, dev = cond.shape[0], cond.device
    dim = model.config.dim_latent
    sampler.set_timesteps(num_steps)
    x = torch.randn(B, dim, generator=generator, device=dev, dtype=cond.dtype)
    total = len(sampler.timesteps)
    for i, t in enumerate(sampler.timesteps.tolist()):
        if cancel is not None and cancel():
            raise CancelledError("sampling cancelled")
        x0, eps = _estimates(model, diffusion, x, t, cond, guidance_scale)
        x = sampler.step(x0, eps, t, x, generator)
        if progress is not None:
            progress(i + 1, total)
    return x


@torch.no_grad()
def posterior_latent(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    cond: Tensor,
    *,
    generator: torch.Generator | None = None,
    guidance_scale: float = 1.0,
) -> Tensor:
    """The network's clean-latent estimate ``[B, D]`` at the last timestep ``T - 1``, from
    pure noise: one evaluation per condition, no sampling.

    There the noisy input carries almost nothing of the location (``abar`` is 2e-5 for the
    linear schedule at T = 100), so a model trained to predict the clean latent under the
    SHDD-KL loss answers with its estimate of the whole posterior of the location given the
    condition: the density ``q_e`` of these coefficients, whose mode is the most probable
    place.
    """
    x = torch.randn(
        cond.shape[0], model.config.dim_latent, generator=generator, device=cond.device,
        dtype=cond.dtype,
    )  # fmt: skip
    return _estimates(model, diffusion, x, diffusion.config.num_steps - 1, cond, guidance_scale)[0]


def _estimates(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    x: Tensor,
    t: int,
    cond: Tensor,
    guidance_scale: float,
) -> tuple[Tensor, Tensor]:
    """``(x0, eps)`` of the network at ``x`` and timestep ``t``, guided when ``w != 1``."""
    B, dev = cond.shape[0], cond.device
    tt = torch.full((B,), t, dtype=torch.long, device=dev)
    if guidance_scale == 1.0:
        return diffusion.split_output(model(x, tt, cond), x, tt)
    drop = torch.cat((torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)))
    both = torch.cat((x, x))
    out = model(both, torch.cat((tt, tt)), torch.cat((cond, cond)), drop.to(dev))
    x0_c, x0_u = diffusion.split_output(out, both, torch.cat((tt, tt)))[0].chunk(2)
    x0 = x0_u + guidance_scale * (x0_c - x0_u)
    abar = diffusion.alphas_cumprod[t].item()
    return x0, (x - abar**0.5 * x0) / (1 - abar) ** 0.5
