"""Quadrature on spherical caps that resolves a peak far narrower than the cap.

:func:`cap_quadrature` lays radial panels that grow geometrically from the finest scale to
resolve (a peak's width) out to the cap's radius, Gauss-Legendre in the polar angle, with the
periodic trapezoidal rule in azimuth; the decoder integrates its windows on it.
:func:`cap_partition` is the smooth weight that splits the integral of the SHDD density's
partition function (paper Sec. 4.3, Eq. 12) between a cap and the global grid, so nothing is
counted twice and no hard cap boundary enters the grid's integrand.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from locdiff_core.geo import exp_map, tangent_frame

_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n not in _GL_CACHE:
        _GL_CACHE[n] = np.polynomial.legendre.leggauss(n)
    return _GL_CACHE[n]


def cap_quadrature(
    centre: Tensor,
    radius: Tensor,
    inner: Tensor,
    *,
    radial_nodes: int = 6,
    azimuth_nodes: int = 32,
) -> tuple[Tensor, Tensor, Tensor]:
    """Quadrature on spherical caps around ``centre [K, 3]`` with ``radius [K]`` (rad).

    Radial panels grow geometrically from ``inner [K]`` (the finest scale to resolve) to the
    radius, each with ``radial_nodes`` Gauss-Legendre nodes in the polar angle; the azimuth uses
    the (spectrally accurate) periodic trapezoidal rule. Returns nodes ``[K, P, 3]``, weights
    ``[K, P]`` (steradian) and each node's polar angle ``[K, P]``.
    """
    dt, dev = torch.float64, centre.device
    radius = radius.to(dt)
    first = torch.minimum(inner.to(dt), radius).clamp_min(1e-12)
    num_panels = int(torch.ceil(torch.log2(radius / first)).clamp_min(0).max().item()) + 1
    k = torch.arange(num_panels + 1, dtype=dt, device=dev)
    edges = torch.where(k[None, :] == 0, 0.0, first[:, None] * torch.exp2(k[None, :] - 1))
    edges = torch.minimum(edges, radius[:, None])  # (K, P+1); repeated edges: empty panels
    x, w = (torch.as_tensor(a, dtype=dt, device=dev) for a in _gauss_legendre(radial_nodes))
    lo, hi = edges[:, :-1], edges[:, 1:]
    half = (hi - lo) / 2
    gamma = ((lo + hi) / 2)[..., None] + half[..., None] * x  # (K, P, n)
    wr = half[..., None] * w * torch.sin(gamma)
    alpha = (torch.arange(azimuth_nodes, dtype=dt, device=dev) + 0.5) * (
        2 * math.pi / azimuth_nodes
    )
    gamma = gamma.reshape(gamma.shape[0], -1)[:, :, None].expand(-1, -1, azimuth_nodes)
    weight = (wr.reshape(wr.shape[0], -1)[:, :, None] * (2 * math.pi / azimuth_nodes)).expand_as(
        gamma
    )
    e1, e2 = tangent_frame(centre.to(dt))
    xx = gamma * torch.cos(alpha)
    yy = gamma * torch.sin(alpha)
    nodes = exp_map(centre.to(dt)[:, None, None], e1[:, None, None], e2[:, None, None], xx, yy)
    K = centre.shape[0]
    return nodes.reshape(K, -1, 3), weight.reshape(K, -1), gamma.reshape(K, -1)


def _smooth_step(t: Tensor) -> Tensor:
    """0 for t <= 0, 1 for t >= 1, C2 quintic in between."""
    t = t.clamp(0.0, 1.0)
    return t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)


def cap_partition(gamma: Tensor, radius: Tensor) -> Tensor:
    """Weight of a cap of ``radius`` at polar angle ``gamma``: 1 inside ``radius / 2``, 0 beyond
    ``radius``, smooth in between."""
    return _smooth_step((radius - gamma) / (0.5 * radius))
