"""Latent diffusion over SHDD vectors (paper Sec. 4.6, Appendix A.7-A.8)."""

from locdiff_core.diffusion.gaussian import (
    DiffusionConfig,
    GaussianDiffusion,
    LossKind,
    Prediction,
    ScheduleKind,
    TrainingDraws,
)
from locdiff_core.diffusion.samplers import (
    CancelledError,
    DDIMSampler,
    DDPMSampler,
    Sampler,
    SamplerKind,
    make_sampler,
    posterior_latent,
    sample,
)

__all__ = [
    "CancelledError",
    "DDIMSampler",
    "DDPMSampler",
    "DiffusionConfig",
    "GaussianDiffusion",
    "LossKind",
    "Prediction",
    "Sampler",
    "SamplerKind",
    "ScheduleKind",
    "TrainingDraws",
    "make_sampler",
    "posterior_latent",
    "sample",
]
