"""The local band expansion evaluates f exactly as direct encoding does, and faster paths
never change an answer: points off the band fall back to direct evaluation."""

import math

import pytest
import torch

from locdiff_core import shdd
from locdiff_core.geo import exp_map, latlon_to_xyz, tangent_frame, uniform_points
from locdiff_core.shdd.local import LocalEvaluator, evaluate_points

F64 = torch.float64


def points_around(centre, reach, count, rng):
    e1, e2 = tangent_frame(centre)
    r = torch.rand(centre.shape[0], count, generator=rng, dtype=F64) * reach
    a = torch.rand(centre.shape[0], count, generator=rng, dtype=F64) * 2 * math.pi
    return exp_map(centre[:, None], e1[:, None], e2[:, None], r * torch.cos(a), r * torch.sin(a))


@pytest.mark.parametrize(
    ("L", "reach"), [(15, 1.0), (47, 0.02), (47, 0.13), (47, 3.2), (200, 0.002)]
)
def test_band_expansion_matches_direct_evaluation(L, reach, rng):
    lat, lon = uniform_points(6, generator=rng)
    lat[0], lat[1], lon[2] = 89.95, -89.99, 180.0  # both poles and the antimeridian
    e = shdd.encode(lat, lon, L) + 0.1 * torch.randn(6, (L + 1) ** 2, generator=rng, dtype=F64)
    centre = latlon_to_xyz(lat, lon)
    local = LocalEvaluator(e, L, centre, torch.full((6,), reach, dtype=F64))
    pts = points_around(centre, reach, 200, rng)
    direct = evaluate_points(e, pts, L)
    assert torch.allclose(local(pts), direct, rtol=0, atol=1e-11 * direct.abs().max())


def test_points_off_the_band_fall_back_to_direct_evaluation(rng):
    L = 31
    e = torch.randn(3, (L + 1) ** 2, generator=rng, dtype=F64)
    centre = latlon_to_xyz(torch.tensor([10.0, -40.0, 70.0], dtype=F64), torch.zeros(3, dtype=F64))
    local = LocalEvaluator(e, L, centre, torch.full((3,), 0.01, dtype=F64))
    far = points_around(centre, 0.5, 50, rng)  # well outside the 0.01 rad band
    rows = torch.tensor([2, 0])
    assert torch.allclose(
        local(far[rows], rows), evaluate_points(e[rows], far[rows], L), atol=1e-10
    )


def test_band_expansion_is_differentiable(rng):
    L = 23
    e = torch.randn(2, (L + 1) ** 2, generator=rng, dtype=F64, requires_grad=True)
    centre = latlon_to_xyz(
        torch.tensor([5.0, -60.0], dtype=F64), torch.tensor([3.0, 100.0], dtype=F64)
    )
    pts = points_around(centre, 0.05, 30, rng)
    LocalEvaluator(e, L, centre, torch.full((2,), 0.05, dtype=F64))(pts).sum().backward()
    fast = e.grad.clone()
    e.grad = None
    evaluate_points(e, pts, L).sum().backward()
    assert torch.allclose(fast, e.grad, atol=1e-9)
