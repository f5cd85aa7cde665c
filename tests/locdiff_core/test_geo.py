import math

import pytest
import torch

from locdiff_core import geo


def test_great_circle_known_distances():
    # Quarter of a meridian and half the equator.
    f64 = torch.float64
    d = geo.great_circle_km(
        torch.tensor([0.0, 0.0], dtype=f64),
        torch.tensor([0.0, 0.0], dtype=f64),
        torch.tensor([90.0, 0.0], dtype=f64),
        torch.tensor([0.0, 180.0], dtype=f64),
    )
    assert d[0].item() == pytest.approx(math.pi / 2 * geo.EARTH_RADIUS_KM, rel=1e-12)
    assert d[1].item() == pytest.approx(math.pi * geo.EARTH_RADIUS_KM, rel=1e-12)


def test_great_circle_is_exact_for_tiny_distances():
    one_mm_deg = 1e-6 / geo.EARTH_RADIUS_KM * 180 / math.pi
    d = geo.great_circle_km(
        torch.tensor(10.0, dtype=torch.float64),
        torch.tensor(20.0, dtype=torch.float64),
        torch.tensor(10.0 + one_mm_deg, dtype=torch.float64),
        torch.tensor(20.0, dtype=torch.float64),
    )
    assert d.item() == pytest.approx(1e-6, rel=1e-6)


def test_latlon_xyz_round_trip_and_wrap():
    lat = torch.tensor([-90.0, -45.5, 0.0, 33.3, 90.0], dtype=torch.float64)
    lon = torch.tensor([10.0, 181.0, -180.0, 540.0, -10.0], dtype=torch.float64)
    lat2, _lon2 = geo.xyz_to_latlon(geo.latlon_to_xyz(lat, lon))
    assert torch.allclose(lat2, lat, atol=1e-12)
    wrapped = geo.wrap_lon(lon)
    assert torch.allclose(
        wrapped[1:4], torch.tensor([-179.0, -180.0, 180.0 - 360.0], dtype=torch.float64)
    )
    assert bool(((wrapped >= -180) & (wrapped < 180)).all())


def test_check_latlon_messages():
    with pytest.raises(ValueError, match=r"lat\[1\] = 91"):
        geo.check_latlon([0.0, 91.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        geo.check_latlon([0.0, float("nan")], [0.0, 0.0])
    with pytest.raises(ValueError, match="must match"):
        geo.check_latlon([0.0, 1.0], [0.0])
    with pytest.raises(ValueError, match="1-D"):
        geo.check_latlon(torch.zeros(2, 2), torch.zeros(2, 2))


def test_fibonacci_lattice_is_nearly_uniform():
    lat, _lon = geo.fibonacci_lattice(20000)
    z = torch.sin(torch.deg2rad(lat))
    # Equal-area: z is uniform on [-1, 1], so each band of z holds its share of points.
    counts = torch.histc(z, bins=10, min=-1, max=1)
    assert counts.min() >= 1999 and counts.max() <= 2001


def test_spherical_mean_across_antimeridian():
    lat, lon = geo.spherical_mean(torch.tensor([10.0, 10.0]), torch.tensor([179.0, -179.0]))
    assert lat.item() == pytest.approx(10.0, abs=0.01)
    assert abs(abs(lon.item()) - 180.0) < 1e-9


def test_tangent_frame_orthonormal_at_poles():
    u = geo.latlon_to_xyz(
        torch.tensor([90.0, -90.0, 0.0], dtype=torch.float64),
        torch.tensor([0.0, 0.0, 45.0], dtype=torch.float64),
    )
    e1, e2 = geo.tangent_frame(u)
    for a, b in ((u, e1), (u, e2), (e1, e2)):
        assert torch.allclose((a * b).sum(-1), torch.zeros(3, dtype=torch.float64), atol=1e-15)
    assert torch.allclose(e1.norm(dim=-1), torch.ones(3, dtype=torch.float64))


def test_great_circle_mixed_dtypes_promote():
    d = geo.great_circle_km(
        torch.tensor([1.0], dtype=torch.float64),
        torch.tensor([2.0]),
        torch.tensor(1.0),
        torch.tensor(2.0, dtype=torch.float64),
    )
    assert d.dtype == torch.float64 and abs(d.item()) < 1e-9
