"""The fused CPU encoder agrees with the eager PyTorch recurrence it replaces on the CPU."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from locdiff_core import shdd
from locdiff_core.geo import check_latlon
from locdiff_core.shdd import fused
from locdiff_core.shdd.harmonics import encode_eager

pytest.importorskip("numba", reason="the fused encoder needs numba; encode falls back without it")

F64 = torch.float64
#: Relative agreement asked of the fused path (relative to each value, with an absolute floor
#: of that fraction of the largest value: near a zero of Pbar_lm only absolute error means much).
TOLERANCE = {torch.float32: 1e-6, F64: 1e-12}


def awkward_points(n, gen, dtype):
    """Random points plus exact poles, |lat| within 1e-7 deg of 90, and unwrapped longitudes."""
    z = torch.rand(n, generator=gen, dtype=F64) * 2 - 1
    lat = torch.rad2deg(torch.asin(z))
    lon = torch.rand(n, generator=gen, dtype=F64) * 1080 - 540  # wrapped by check_latlon
    edge_lat = [90.0, -90.0, 89.9999999, -89.9999999, 89.999, -89.99, 0.0, 45.0, -60.0, 60.0]
    edge_lon = [0.0, 180.0, -180.0, 179.9999, 540.0, -900.0, 360.0, -181.0, 359.5, 1e4]
    lat = torch.cat((lat, torch.tensor(edge_lat, dtype=F64)))
    lon = torch.cat((lon, torch.tensor(edge_lon, dtype=F64)))
    return check_latlon(lat.to(dtype), lon.to(dtype))


def assert_agrees(got, ref, dtype):
    tol = TOLERANCE[dtype]
    assert got.shape == ref.shape and got.dtype == ref.dtype == dtype
    assert bool(torch.isfinite(got).all())
    err = (got.to(F64) - ref.to(F64)).abs()
    bound = tol * (ref.to(F64).abs() + ref.to(F64).abs().max())
    worst = float((err / bound).max()) if err.numel() else 0.0
    assert worst <= 1.0, f"fused vs eager: {worst:.3g} x the tolerance {tol}"


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("degree", [0, 1, 2, 15, 23, 47, 100, 200])
def test_fused_matches_eager(degree, dtype, rng):
    lat, lon = awkward_points(300 if degree <= 100 else 120, rng, dtype)
    got = fused.encode_fused(lat, lon, degree)
    assert got is not None, "numba is installed but the fused encoder did not compile"
    assert_agrees(got, encode_eager(lat, lon, degree), dtype)


def test_poles_and_seed_scaling(rng):
    """At a pole only m = 0 survives (to 1e-12 at the south pole, where sin(pi) is 1e-16 in
    float64); seeds that underflow float32 come out as in float64."""
    lat, lon = check_latlon(torch.tensor([90.0, -90.0]), torch.tensor([33.0, -120.0]))
    y = fused.encode_fused(lat, lon, 200)
    l = torch.arange(201)
    zonal = torch.zeros(201**2, dtype=torch.bool)
    zonal[l * (l + 1)] = True
    assert bool((y[~zonal, 0] == 0).all()) and float(y[~zonal, 1].abs().max()) < 1e-12
    expected = torch.sqrt((2 * l + 1) / (4 * math.pi)).float()
    assert torch.allclose(y[zonal].abs(), expected[:, None].expand(-1, 2), rtol=1e-4)
    lat, lon = check_latlon(torch.tensor([60.0, -55.0, 40.0]), torch.tensor([10.0, 20.0, 30.0]))
    f32 = fused.encode_fused(lat, lon, 200).to(F64)
    f64 = fused.encode_fused(lat.to(F64), lon.to(F64), 200)
    assert (f32 - f64).abs().max() < 2e-4


def test_public_encode_uses_the_fused_path_and_keeps_the_layout(monkeypatch, rng):
    calls = []
    real = fused.encode_fused
    monkeypatch.setattr(fused, "encode_fused", lambda *a: calls.append(a) or real(*a))
    lat, lon = awkward_points(50, rng, torch.float32)
    y = shdd.encode(lat, lon, 23)
    assert len(calls) == 1
    assert y.shape == (60, 576) and y.t().is_contiguous()  # coefficient-major storage
    assert torch.equal(y, real(lat, lon, 23).t())
    lat.requires_grad_(True)
    with pytest.raises(ValueError, match="no gradient"):  # neither path has one: said plainly
        shdd.encode(lat, lon, 23)
    assert len(calls) == 1


@pytest.mark.parametrize("num_points", [1, 7, 17, 1023, 1031, 5000])
def test_results_do_not_depend_on_threads_or_blocks(num_points, rng):
    lat, lon = awkward_points(num_points, rng, torch.float32)
    lat, lon = lat[:num_points], lon[:num_points]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fused.encode_fused(lat, lon, 31)
        torch.set_num_threads(max(2, threads))
        many = fused.encode_fused(lat, lon, 31)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many)
    ends = [0, num_points - 1]
    alone = torch.cat([fused.encode_fused(lat[i : i + 1], lon[i : i + 1], 31) for i in ends], 1)
    assert torch.equal(alone, one[:, ends])


def test_no_points_and_strided_input(rng):
    empty = torch.zeros(0, dtype=F64)
    assert fused.encode_fused(empty, empty, 5).shape == (36, 0)
    both = torch.rand(2, 40, generator=rng, dtype=F64) * 90
    lat, lon = both[0, ::2], both[1, ::2]  # non-contiguous views
    assert_agrees(fused.encode_fused(lat, lon, 9), encode_eager(lat, lon, 9), F64)


def run_python(code: str) -> subprocess.CompletedProcess:
    root = Path(fused.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )


def test_falls_back_to_eager_without_numba():
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import torch\n"
        "from locdiff_core import shdd\n"
        "from locdiff_core.shdd import fused, harmonics\n"
        "lat, lon = torch.tensor([10.0, 90.0]), torch.tensor([20.0, 0.0])\n"
        "assert fused.encode_fused(lat, lon, 5) is None\n"
        "ref = harmonics.encode_eager(lat, lon, 5).t()\n"
        "assert torch.equal(shdd.encode(lat, lon, 5), ref)\n"
        "print('ok')\n"
    )
    done = run_python(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert "Warning" not in done.stderr, done.stderr
