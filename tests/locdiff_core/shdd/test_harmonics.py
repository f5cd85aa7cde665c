"""Accuracy of the SHDD encoding: scipy agreement, addition theorem, orthonormality."""

import math

import numpy as np
import pytest
import torch
from scipy import special

from locdiff_core import shdd
from locdiff_core.geo import latlon_to_xyz
from locdiff_core.shdd.grid import ring_legendre

F64 = torch.float64


def random_points(n, gen, max_abs_lat=90.0):
    z = torch.rand(n, generator=gen, dtype=F64) * 2 - 1
    lat = torch.rad2deg(torch.asin(z)).clamp(-max_abs_lat, max_abs_lat)
    lon = torch.rand(n, generator=gen, dtype=F64) * 360 - 180
    return lat, lon


def scipy_real_sh(lat, lon, L):
    theta = np.deg2rad(90.0 - lat.numpy())
    phi = np.deg2rad(lon.numpy())
    out = np.zeros((lat.numel(), (L + 1) ** 2))
    for l in range(L + 1):
        m = np.arange(0, l + 1)
        c = special.sph_harm_y(l, m[None, :], theta[:, None], phi[:, None])  # (N, l+1)
        sign = (-1.0) ** m
        out[:, l * (l + 1)] = c[:, 0].real
        out[:, l * (l + 1) + m[1:]] = math.sqrt(2) * sign[1:] * c[:, 1:].real
        out[:, l * (l + 1) - m[1:]] = math.sqrt(2) * sign[1:] * c[:, 1:].imag
    return out


def test_matches_scipy_up_to_degree_200(rng):
    lat, lon = random_points(24, rng)
    lat = torch.cat((lat, torch.tensor([89.95, -89.99, 0.0], dtype=F64)))
    lon = torch.cat((lon, torch.tensor([179.999, -180.0, 0.0], dtype=F64)))
    ours = shdd.encode(lat, lon, 200).numpy()
    ref = scipy_real_sh(lat, lon, 200)
    assert np.abs(ours - ref).max() < 1e-10


def addition_theorem_error(lat_p, lon_p, lat_u, lon_u, L, dtype):
    yp = shdd.encode(lat_p.to(dtype), lon_p.to(dtype), L).to(F64)
    yu = shdd.encode(lat_u.to(dtype), lon_u.to(dtype), L).to(F64)
    cosg = (latlon_to_xyz(lat_p, lon_p) * latlon_to_xyz(lat_u, lon_u)).sum(-1).clamp(-1, 1)
    worst = 0.0
    for l in range(L + 1):
        block = slice(l * l, (l + 1) ** 2)
        lhs = (yp[:, block] * yu[:, block]).sum(1)
        rhs = (2 * l + 1) / (4 * math.pi) * special.eval_legendre(l, cosg.numpy())
        worst = max(worst, float(np.abs(lhs.numpy() - rhs).max()))
    return worst


def test_addition_theorem_float64_every_degree_to_200(rng):
    lat_p, lon_p = random_points(64, rng)
    lat_u, lon_u = random_points(64, rng)
    assert addition_theorem_error(lat_p, lon_p, lat_u, lon_u, 200, F64) < 1e-9


def test_addition_theorem_float32_degree_200_away_from_poles(rng):
    lat_p, lon_p = random_points(64, rng, max_abs_lat=80.0)
    lat_u, lon_u = random_points(64, rng, max_abs_lat=80.0)
    assert addition_theorem_error(lat_p, lon_p, lat_u, lon_u, 200, torch.float32) < 5e-3


def test_orthonormal_at_degree_200_by_gauss_legendre():
    """Gram matrix of the basis on a Gauss-Legendre x trapezoid rule exact to degree 400.

    Longitude orthogonality of cos(m phi), sin(m phi) is exact on the trapezoid rule, so the
    Gram matrix is block diagonal in m and each block is the Legendre Gram matrix below.
    """
    L = 200
    x, w = np.polynomial.legendre.leggauss(L + 1)
    lat = torch.rad2deg(torch.asin(torch.tensor(x, dtype=F64)))
    table = ring_legendre(lat, L)  # [m, l, ring] = c_m Pbar_lm
    weights = torch.tensor(w, dtype=F64)
    # Integral over phi of (sqrt2 cos m phi)^2 = 2 pi, as of 1 for m = 0: c_m is already in
    # the table, so every order gets pi * (c_m^2 Pbar^2) except m = 0, which gets 2 pi.
    gram = torch.bmm(table * weights, table.transpose(1, 2)) * math.pi
    gram[0] *= 2.0
    eye = torch.eye(L + 1, dtype=F64)
    mask = torch.tril(torch.ones(L + 1, L + 1, dtype=torch.bool))
    for m in range(L + 1):
        valid = mask[m:, m:]  # only l, k >= m exist for this order
        err = (gram[m, m:, m:] - eye[m:, m:])[valid & valid.t()]
        assert err.abs().max() < 1e-10, f"order {m}"


def test_full_gram_small_degree():
    L = 20
    x, w = np.polynomial.legendre.leggauss(L + 1)
    n_lon = 2 * L + 2
    lat = torch.rad2deg(torch.asin(torch.tensor(x, dtype=F64)))[:, None].expand(-1, n_lon)
    lon = (torch.arange(n_lon, dtype=F64) * 360.0 / n_lon - 180.0)[None, :].expand(L + 1, -1)
    y = shdd.encode(lat.reshape(-1), lon.reshape(-1), L)
    wt = (torch.tensor(w, dtype=F64)[:, None] * (2 * math.pi / n_lon)).expand(-1, n_lon)
    gram = y.t() @ (y * wt.reshape(-1, 1))
    assert torch.allclose(gram, torch.eye((L + 1) ** 2, dtype=F64), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_at_degree_200_including_poles(dtype, rng):
    lat, lon = random_points(500, rng)
    lat = torch.cat((lat, torch.tensor([90.0, -90.0, 89.999, -89.9999, 0.0], dtype=F64)))
    lon = torch.cat((lon, torch.tensor([0.0, 50.0, -180.0, 179.99, 180.0], dtype=F64)))
    y = shdd.encode(lat.to(dtype), lon.to(dtype), 200)
    assert y.dtype == dtype and y.shape == (505, 201**2)
    assert bool(torch.isfinite(y).all())
    # Y_00 is the constant 1 / sqrt(4 pi).
    assert torch.allclose(y[:, 0].to(F64), torch.full((505,), 0.5 / math.sqrt(math.pi), dtype=F64))


def test_float32_keeps_underflowing_orders_accurate():
    """Orders whose sectoral seed sin^m(theta) underflows float32 still come out right."""
    lat = torch.tensor([60.0, -55.0, 40.0], dtype=F64)  # sin(colat) = 0.5, 0.57, 0.77
    lon = torch.tensor([10.0, 20.0, 30.0], dtype=F64)
    ref = shdd.encode(lat, lon, 200)
    ours = shdd.encode(lat.float(), lon.float(), 200).to(F64)
    assert (ours - ref).abs().max() < 2e-4


def test_dtype_device_and_wrapping():
    lat = torch.tensor([12.5, -33.0], dtype=F64)
    lon = torch.tensor([-170.0, 20.0], dtype=F64)
    a = shdd.encode(lat, lon, 15)
    b = shdd.encode(lat, lon + 360.0, 15)
    assert torch.allclose(a, b, atol=1e-12)
    assert shdd.encode(lat.float(), lon.float(), 15).dtype == torch.float32
    assert shdd.encode(12.5, -170.0, 15).shape == (1, 256)


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"outside \[-90, 90\]"):
        shdd.encode(torch.tensor([95.0]), torch.tensor([0.0]), 10)
    with pytest.raises(ValueError, match="finite"):
        shdd.encode(torch.tensor([float("nan")]), torch.tensor([0.0]), 10)
    with pytest.raises(ValueError, match="must match"):
        shdd.encode(torch.zeros(3), torch.zeros(2), 10)
    with pytest.raises(ValueError, match="degree"):
        shdd.encode(torch.zeros(3), torch.zeros(3), -1)
    with pytest.raises(ValueError, match=r"\(L\+1\)\^2"):
        shdd.degree_of(50)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    lat = torch.linspace(-89.9, 89.9, 1000, dtype=F64)
    lon = torch.linspace(-180, 179, 1000, dtype=F64)
    for dtype in (torch.float32, torch.float64):
        cpu = shdd.encode(lat.to(dtype), lon.to(dtype), 100)
        gpu = shdd.encode(lat.to(dtype).cuda(), lon.to(dtype).cuda(), 100).cpu()
        assert (cpu - gpu).abs().max() < (1e-4 if dtype == torch.float32 else 1e-12)
