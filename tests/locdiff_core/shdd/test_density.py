"""The SHDD density integrates to one, for smooth and for the sharpest densities."""

import math

import numpy as np
import pytest
import torch

from locdiff_core import shdd
from locdiff_core.geo import exp_map, latlon_to_xyz, tangent_frame, xyz_to_latlon

F64 = torch.float64


def radial_mass(coeffs, lat, lon, L):
    """Integral of q over the sphere for a density symmetric about (lat, lon).

    q of encode(p) depends only on the angle g to p, so the sphere integral is the 1-D
    integral of 2 pi q(g) sin(g); composite Gauss-Legendre panels that start at a tenth of the
    peak width resolve it independently of the library's own quadrature.
    """
    sigma = shdd.kernel_sigma_rad(L)
    edges = np.concatenate(([0.0], sigma * 0.1 * 2.0 ** np.arange(0, 40)))
    edges = np.unique(np.clip(edges, 0, math.pi))
    x, w = np.polynomial.legendre.leggauss(24)
    g = ((edges[:-1] + edges[1:]) / 2)[:, None] + ((edges[1:] - edges[:-1]) / 2)[:, None] * x
    wg = ((edges[1:] - edges[:-1]) / 2)[:, None] * w
    g, wg = torch.tensor(g.ravel(), dtype=F64), torch.tensor(wg.ravel(), dtype=F64)
    u = latlon_to_xyz(torch.tensor([lat], dtype=F64), torch.tensor([lon], dtype=F64))
    e1, e2 = tangent_frame(u)
    pts = exp_map(u, e1, e2, g, torch.zeros_like(g))
    qlat, qlon = xyz_to_latlon(pts)
    logq = shdd.log_density(coeffs, qlat, qlon)[0].to(F64)
    return float((2 * math.pi * torch.exp(logq) * torch.sin(g) * wg).sum())


@pytest.mark.parametrize("L", [15, 47, 200])
@pytest.mark.parametrize("where", [(43.47, 11.88), (89.95, -30.0), (-12.0, 179.99)])
def test_sharpest_density_integrates_to_one(L, where):
    lat, lon = where
    e = shdd.encode(torch.tensor([lat], dtype=F64), torch.tensor([lon], dtype=F64), L)
    assert abs(radial_mass(e, lat, lon, L) - 1.0) < 1e-3


def test_sharpest_density_float32_coefficients():
    e = shdd.encode(torch.tensor([20.0]), torch.tensor([-60.0]), 100)
    assert e.dtype == torch.float32
    assert abs(radial_mass(e.to(F64), 20.0, -60.0, 100) - 1.0) < 1e-3
    assert shdd.log_density(e, torch.tensor([20.0]), torch.tensor([-60.0])).dtype == torch.float32


@pytest.mark.parametrize("L", [10, 31])
def test_smooth_density_integrates_to_one(L, rng):
    e = torch.randn(3, (L + 1) ** 2, generator=rng, dtype=F64) * 0.3
    # An independent rule: Gauss-Legendre in sin(lat) times a trapezoid in longitude, finer
    # than the library's grid.
    n = 6 * (L + 1)
    x, w = np.polynomial.legendre.leggauss(n)
    lat = torch.rad2deg(torch.asin(torch.tensor(x, dtype=F64)))[:, None].expand(-1, 2 * n)
    lon = (torch.arange(2 * n, dtype=F64) * 180.0 / n - 180.0)[None, :].expand(n, -1)
    logq = shdd.log_density(e, lat.reshape(-1), lon.reshape(-1))
    wt = (torch.tensor(w, dtype=F64)[:, None] * (math.pi / n)).expand(-1, 2 * n).reshape(-1)
    mass = (torch.exp(logq) * wt).sum(1)
    assert torch.allclose(mass, torch.ones(3, dtype=F64), atol=1e-3)


def test_log_density_per_item_points_and_gradients():
    L = 200
    e = shdd.encode(torch.tensor([10.0, -50.0]), torch.tensor([5.0, 100.0]), L)
    e = (e + 0.01 * torch.randn_like(e)).requires_grad_(True)
    lat = torch.tensor([[10.0, 11.0], [-50.0, 0.0]])
    lon = torch.tensor([[5.0, 5.0], [100.0, 0.0]])
    logq = shdd.log_density(e, lat, lon)
    assert logq.shape == (2, 2) and bool(torch.isfinite(logq).all())
    assert logq[0, 0] > logq[0, 1] and logq[1, 0] > logq[1, 1]
    logq.sum().backward()
    assert bool(torch.isfinite(e.grad).all())


def test_density_grid_shape_and_mass(rng):
    L = 12
    e = torch.randn(2, (L + 1) ** 2, generator=rng, dtype=F64) * 0.3
    q = shdd.density_grid(e, 90, 180)
    assert q.shape == (2, 90, 180)
    lat_edges = torch.linspace(90, -90, 91, dtype=F64)
    band = torch.sin(torch.deg2rad(lat_edges[:-1])) - torch.sin(torch.deg2rad(lat_edges[1:]))
    cell = band[:, None] * (2 * math.pi / 180)
    assert torch.allclose((q * cell).sum((1, 2)), torch.ones(2, dtype=F64), atol=2e-3)
    small = shdd.density_grid(e, 4, 8)  # fewer columns than 2L: direct evaluation
    assert small.shape == (2, 4, 8) and bool(torch.isfinite(small).all())


def test_bad_coefficients():
    with pytest.raises(ValueError, match=r"\(L\+1\)\^2"):
        shdd.log_density(torch.zeros(2, 17), torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match="NaN"):
        shdd.log_density(torch.full((1, 16), float("nan")), torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match=r"\[B, \(L\+1\)\^2\]"):
        shdd.density_grid(torch.zeros(2, 2, 16), 10, 20)
