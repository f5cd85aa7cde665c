"""DDPM training over scaled SHDD latents (paper Sec. 4.6; Ho et al. 2020).

The latent of a location ``p`` is ``x0 = latent_scale * encode(p)``. An SHDD vector has a
mean square of ``1 / (4 pi)`` per value (the addition theorem), so the default scale
``sqrt(4 pi)`` gives the latent unit variance, the magnitude the noise schedule assumes.

The network predicts either the clean latent (``Prediction.X0``, the paper's choice) or the
noise (``EPS``). Losses: the SHDD-KL between the predicted density and the true location
(paper Eq. 17; default), or the Table 7 ablations ``MSE`` and ``COSINE`` on the clean latent;
``EPS`` prediction trains with the plain noise MSE.

Condition noise (``cond_noise``, a regulariser for small data sets) adds Gaussian noise of that
size relative to each condition's root mean square value, and rescales the row back to its
norm: 1 leaves a cosine of about 0.7 to the clean condition. Training pairs then stand for the
neighbourhoods of their conditions instead of single points (as a neighbour vote pools the
pairs it finds), and each epoch sees each pair with new noise.

A batch's random numbers (timesteps, noise, condition dropout and noise, KL anchors) can be drawn
up front
with :meth:`GaussianDiffusion.draw` and passed to :meth:`GaussianDiffusion.training_losses`: a
distributed trainer draws them for the global batch from a generator seeded by the step and
gives each process its rows, so the loss of an example does not depend on the process count.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from locdiff_core.config_fields import Choice, Int, Real, check_fields, from_fields
from locdiff_core.shdd import KLEstimator, cosine_loss, encode, kl_loss, mse_loss
from locdiff_core.shdd.loss import AnchorDraws, draw_anchors


class ScheduleKind(enum.Enum):
    LINEAR = "linear"  # Ho et al.: beta from 1e-4 to 0.02 (scaled to the step count)
    COSINE = "cosine"  # Nichol & Dhariwal


class Prediction(enum.Enum):
    X0 = "x0"  # the clean SHDD latent (paper)
    EPS = "eps"  # the added noise


class LossKind(enum.Enum):
    SHDD_KL = "shdd_kl"  # paper Eq. 17 (estimator in DiffusionConfig.kl_estimator)
    MSE = "mse"  # Table 7 ablation, on the clean latent
    COSINE = "cosine"  # Table 7 ablation, on the clean latent


@dataclass(frozen=True)
class DiffusionConfig:
    """The noise process and training objective; stored in every checkpoint."""

    num_steps: int = 100  # T (paper: 100)
    schedule: ScheduleKind = ScheduleKind.LINEAR
    prediction: Prediction = Prediction.X0
    loss: LossKind = LossKind.SHDD_KL
    kl_estimator: KLEstimator = KLEstimator.IMPORTANCE
    num_anchors: int = 2048  # uniform anchors per batch (paper: 2048)
    latent_scale: float = math.sqrt(4.0 * math.pi)
    cond_drop_prob: float = 0.0  # > 0 trains for classifier-free guidance
    cond_noise: float = 0.0  # > 0: training conditions get noise of this size (module docstring)

    def validate(self) -> None:
        check_fields(self, DIFFUSION_FIELDS)
        if self.prediction is Prediction.EPS and self.loss is not LossKind.MSE:
            raise ValueError(
                "noise prediction (eps) trains with the MSE loss; use loss=mse or prediction=x0"
            )

    def to_dict(self) -> dict:
        return {
            "num_steps": self.num_steps,
            "schedule": self.schedule.value,
            "prediction": self.prediction.value,
            "loss": self.loss.value,
            "kl_estimator": self.kl_estimator.value,
            "num_anchors": self.num_anchors,
            "latent_scale": self.latent_scale,
            "cond_drop_prob": self.cond_drop_prob,
            "cond_noise": self.cond_noise,
        }

    @classmethod
    def from_dict(cls, raw: object, where: str = "diffusion") -> DiffusionConfig:
        """The config from its JSON object (:meth:`to_dict`), every field checked
        (``ValueError`` names ``where.field`` and what it must be)."""
        return from_fields(cls, raw, DIFFUSION_FIELDS, where)


# Bounds far above the paper's T = 100 and 2048 anchors, low enough that the schedule tensors
# (T values) and a batch's anchor harmonics (anchors x (L+1)^2) stay allocatable.
DIFFUSION_FIELDS = {
    "num_steps": Int(1, 10_000),
    "schedule": Choice(ScheduleKind),
    "prediction": Choice(Prediction),
    "loss": Choice(LossKind),
    "kl_estimator": Choice(KLEstimator),
    "num_anchors": Int(1, 65_536),
    "latent_scale": Real(0.0, 1e6, open_lo=True),
    "cond_drop_prob": Real(0.0, 1.0, open_hi=True),
    "cond_noise": Real(0.0, 100.0),
}


@dataclass(frozen=True)
class TrainingDraws:
    """The random numbers of one training batch (see :meth:`GaussianDiffusion.draw`)."""

    t: Tensor  # (B,) int64 timesteps in [0, T)
    noise: Tensor  # (B, D) float32 standard normal
    drop_u: Tensor | None  # (B,) uniform in [0, 1): condition dropped where < cond_drop_prob
    anchors: AnchorDraws | None  # SHDD-KL anchors (None for the other losses)
    cond_noise: Tensor | None = None  # (B, C) standard normal, with cond_noise > 0

    def rows(self, idx: Tensor) -> TrainingDraws:
        """The draws of rows ``idx`` of the batch."""
        return TrainingDraws(
            t=self.t[idx],
            noise=self.noise[idx],
            drop_u=None if self.drop_u is None else self.drop_u[idx],
            anchors=None if self.anchors is None else self.anchors.rows(idx),
            cond_noise=None if self.cond_noise is None else self.cond_noise[idx],
        )


def betas_for(kind: ScheduleKind, num_steps: int) -> Tensor:
    """``beta_t [T]`` (float64) of the schedule."""
    if kind is ScheduleKind.LINEAR:
        scale = 1000.0 / num_steps  # keeps the endpoints of the 1000-step schedule
        return torch.linspace(
            scale * 1e-4, min(scale * 0.02, 0.999), num_steps, dtype=torch.float64
        )
    s = 0.008
    t = torch.linspace(0, num_steps, num_steps + 1, dtype=torch.float64) / num_steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=0.999)


class GaussianDiffusion:
    """The forward process and training loss; holds no network (it is passed in)."""

    def __init__(self, config: DiffusionConfig) -> None:
        config.validate()
        self.config = config
        self.betas = betas_for(config.schedule, config.num_steps)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, 0)  # (T,) float64

    def to_latent(self, lat_deg: Tensor, lon_deg: Tensor, degree: int) -> Tensor:
        """``x0 [B, (L+1)^2]`` float32 latents of locations."""
        return encode(lat_deg, lon_deg, degree).float() * self.config.latent_scale

    def to_coeffs(self, latent: Tensor) -> Tensor:
        """SHDD coefficients of a latent (the inverse of the scaling)."""
        return latent / self.config.latent_scale

    def _abar(self, t: Tensor, like: Tensor) -> Tensor:
        return self.alphas_cumprod.to(like.device)[t].to(like.dtype)[:, None]

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` for ``t [B]`` in ``[0, T)``."""
        abar = self._abar(t, x0)
        return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise

    def split_output(self, output: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(x0, eps)`` implied by a network output at ``x_t``."""
        abar = self._abar(t, x_t)
        if self.config.prediction is Prediction.X0:
            x0 = output
            eps = (x_t - abar.sqrt() * x0) / (1.0 - abar).sqrt()
        else:
            eps = output
            x0 = (x_t - (1.0 - abar).sqrt() * eps) / abar.sqrt()
        return x0, eps

    def draw(
        self,
        batch: int,
        degree: int,
        *,
        dim_cond: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> TrainingDraws:
        """Every random number :meth:`training_losses` needs for ``batch`` rows at degree L
        (``dim_cond``, the condition's width, is needed with ``cond_noise``)."""
        cfg = self.config
        t, noise, drop_u = self._step_draws(batch, (degree + 1) ** 2, generator, device)
        anchors = None
        if cfg.prediction is Prediction.X0 and cfg.loss is LossKind.SHDD_KL:
            anchors = draw_anchors(
                batch,
                cfg.num_anchors,
                estimator=cfg.kl_estimator,
                generator=generator,
                device=device,
            )
        cond_noise = None
        if cfg.cond_noise > 0:
            if dim_cond is None:
                raise ValueError("cond_noise > 0: pass draw(..., dim_cond=C), the condition width")
            cond_noise = torch.randn(batch, dim_cond, device=device, generator=generator)
        return TrainingDraws(t, noise, drop_u, anchors, cond_noise)

    def _step_draws(self, batch: int, width: int, generator, device, dtype=None):
        """The timesteps, the noise and the condition-dropout numbers of a step, in that order
        (what :meth:`draw` and :meth:`training_losses` share)."""
        t = torch.randint(self.config.num_steps, (batch,), device=device, generator=generator)
        noise = torch.randn(batch, width, device=device, generator=generator, dtype=dtype)
        drop_u = None
        if self.config.cond_drop_prob > 0:
            drop_u = torch.rand(batch, device=device, generator=generator)
        return t, noise, drop_u

    def noisy_condition(self, cond: Tensor, noise: Tensor) -> Tensor:
        """``cond [B, C]`` with ``cond_noise`` x its rows' RMS x ``noise [B, C]`` added, each
        row rescaled to its norm before the noise."""
        norm = cond.norm(dim=1, keepdim=True)
        rms = norm / math.sqrt(cond.shape[1])
        noisy = cond + self.config.cond_noise * rms * noise
        return noisy * (norm / noisy.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def training_losses(
        self,
        model: nn.Module,
        lat_deg: Tensor,
        lon_deg: Tensor,
        cond: Tensor,
        degree: int,
        generator: torch.Generator | None = None,
        draws: TrainingDraws | None = None,
    ) -> Tensor:
        """Per-example loss ``[B]`` for locations ``[B]`` (degrees) and conditions ``[B, C]``.

        The random numbers come from ``draws`` when given (see :meth:`draw`), else from
        ``generator`` (or torch's global generator). The network's output is taken in float32,
        so ``model`` may run under autocast.
        """
        dev = cond.device
        x0 = self.to_latent(lat_deg.to(dev), lon_deg.to(dev), degree)
        B = x0.shape[0]
        if draws is None:
            t, noise, drop_u = self._step_draws(B, x0.shape[1], generator, dev, x0.dtype)
            anchors = None  # the KL loss draws its own, after the forward pass as always
            cond_noise = None
            if self.config.cond_noise > 0:
                cond_noise = torch.randn(cond.shape, device=dev, generator=generator)
        else:
            if tuple(draws.noise.shape) != tuple(x0.shape):
                raise ValueError(
                    f"draws hold noise of shape {tuple(draws.noise.shape)} but the batch needs "
                    f"{tuple(x0.shape)}; draw with the batch's size and degree"
                )
            t, noise = draws.t.to(dev), draws.noise.to(dev, x0.dtype)
            drop_u = None if draws.drop_u is None else draws.drop_u.to(dev)
            anchors = draws.anchors
            cond_noise = draws.cond_noise
            if self.config.cond_noise > 0 and (
                cond_noise is None or tuple(cond_noise.shape) != tuple(cond.shape)
            ):
                raise ValueError(
                    f"cond_noise > 0 needs draws of the condition's shape {tuple(cond.shape)}; "
                    "draw with dim_cond = the condition width"
                )
        if cond_noise is not None:
            cond = self.noisy_condition(cond, cond_noise.to(dev, cond.dtype))
        x_t = self.q_sample(x0, t, noise)
        drop = None if drop_u is None else drop_u < self.config.cond_drop_prob
        output = model(x_t, t, cond, drop_cond=drop).float()
        if self.config.prediction is Prediction.EPS:
            return ((output - noise) ** 2).mean(1)
        coeffs = self.to_coeffs(output)
        if self.config.loss is LossKind.SHDD_KL:
            return kl_loss(
                coeffs,
                lat_deg.to(dev),
                lon_deg.to(dev),
                self.config.num_anchors,
                estimator=self.config.kl_estimator,
                generator=generator,
                draws=anchors,
            )
        if self.config.loss is LossKind.MSE:  # in latent units
            return mse_loss(coeffs, lat_deg.to(dev), lon_deg.to(dev)) * self.config.latent_scale**2
        return cosine_loss(coeffs, lat_deg.to(dev), lon_deg.to(dev))
