"""SHDD: Spherical Harmonics Dirac Delta location representations (paper Sec. 4.2-4.4).

Public API (names fixed): :func:`encode`, :func:`log_density`, :func:`kl_loss`,
:func:`decode`, :func:`density_grid`, plus the Table 7 ablation losses and helpers.
"""

from locdiff_core.shdd.decoder import decode, default_radius_km
from locdiff_core.shdd.density import (
    density_grid,
    kernel_sigma_rad,
    log_density,
    log_partition,
)
from locdiff_core.shdd.harmonics import degree_of, encode, num_coefficients
from locdiff_core.shdd.loss import KLDirection, KLEstimator, cosine_loss, kl_loss, mse_loss

__all__ = [
    "KLDirection",
    "KLEstimator",
    "cosine_loss",
    "decode",
    "default_radius_km",
    "degree_of",
    "density_grid",
    "encode",
    "kernel_sigma_rad",
    "kl_loss",
    "log_density",
    "log_partition",
    "mse_loss",
    "num_coefficients",
]
