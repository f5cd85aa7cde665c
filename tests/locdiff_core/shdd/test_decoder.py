"""The mode-seeking decoder: round trips, anchors, bad input."""

import pytest
import torch

from locdiff_core import shdd
from locdiff_core.geo import fibonacci_lattice, great_circle_km

F64 = torch.float64


def hard_points(gen, n_random=3):
    z = torch.rand(n_random, generator=gen, dtype=F64) * 2 - 1
    lat = torch.rad2deg(torch.asin(z))
    lon = torch.rand(n_random, generator=gen, dtype=F64) * 360 - 180
    lat = torch.cat((lat, torch.tensor([89.93, -89.95, 17.0, -40.0], dtype=F64)))
    lon = torch.cat((lon, torch.tensor([45.0, -120.0, 180.0, -179.9999], dtype=F64)))
    return lat, lon


@pytest.mark.parametrize("L", [15, 23, 31, 47, 100, 200])
def test_round_trip_within_a_kilometre(L, rng):
    lat, lon = hard_points(rng)
    e = shdd.encode(lat, lon, L)
    d_lat, d_lon, mass = shdd.decode(e)
    err = great_circle_km(d_lat, d_lon, lat, lon)
    assert float(err.max()) < 1.0
    # The default window holds nearly all of the peak's mass.
    assert bool((mass > 0.9).all()) and bool((mass <= 1.0).all())


def test_round_trip_is_sub_metre_and_float32_input_works():
    lat = torch.tensor([43.4633, -33.8568], dtype=F64)
    lon = torch.tensor([11.8797, 151.2153], dtype=F64)
    d_lat, d_lon, _ = shdd.decode(shdd.encode(lat, lon, 47))
    assert float(great_circle_km(d_lat, d_lon, lat, lon).max()) < 1e-3
    d_lat, d_lon, _ = shdd.decode(shdd.encode(lat.float(), lon.float(), 47))
    assert float(great_circle_km(d_lat, d_lon, lat, lon).max()) < 0.05


def test_window_prefers_mass_over_height():
    """A broad bump holding more mass beats a taller but narrower one."""
    L = 31
    narrow = shdd.encode(torch.tensor([10.0], dtype=F64), torch.tensor([10.0], dtype=F64), L)
    broad = shdd.encode(torch.tensor([-30.0], dtype=F64), torch.tensor([120.0], dtype=F64), L)
    # Broad peak: the degree-8 kernel (lower band limit = wider), scaled up.
    l_of = torch.arange(L + 1).repeat_interleave(2 * torch.arange(L + 1) + 1)
    broad = broad * (l_of <= 8) * 3.0
    e = narrow * 0.25 + broad
    d_lat, d_lon, _ = shdd.decode(e, radius_km=1500.0)
    assert float(great_circle_km(d_lat, d_lon, torch.tensor(-30.0), torch.tensor(120.0))) < 300
    d_lat, d_lon, _ = shdd.decode(e, radius_km=20.0)
    assert float(great_circle_km(d_lat, d_lon, torch.tensor(10.0), torch.tensor(10.0))) < 5


def test_anchor_decoding_returns_an_anchor_near_the_truth():
    lat_a, lon_a = fibonacci_lattice(5000)
    lat = torch.tensor([43.47, -70.0], dtype=F64)
    lon = torch.tensor([11.88, -60.0], dtype=F64)
    e = shdd.encode(lat, lon, 47)
    d_lat, d_lon, share = shdd.decode(e, radius_km=300.0, anchors=(lat_a, lon_a))
    nearest = great_circle_km(lat[:, None], lon[:, None], lat_a[None], lon_a[None]).min(1).values
    err = great_circle_km(d_lat, d_lon, lat, lon)
    assert bool((err <= nearest + 200.0).all())
    assert bool(((share > 0) & (share <= 1.0 + 1e-9)).all())
    # An [M, 2] tensor works as well.
    d2 = shdd.decode(e, radius_km=300.0, anchors=torch.stack((lat_a, lon_a), 1))
    assert torch.equal(d2[0], d_lat)


def test_bad_input():
    e = shdd.encode(torch.tensor([0.0]), torch.tensor([0.0]), 10)
    with pytest.raises(ValueError, match="radius_km"):
        shdd.decode(e, radius_km=-5.0)
    with pytest.raises(ValueError, match=r"\(L\+1\)\^2"):
        shdd.decode(torch.zeros(1, 99))
    with pytest.raises(ValueError, match="anchors"):
        shdd.decode(e, anchors=torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"outside \[-90, 90\]"):
        shdd.decode(e, anchors=(torch.tensor([100.0]), torch.tensor([0.0])))


def test_decoding_without_the_mass_finds_the_same_location():
    g = torch.Generator().manual_seed(3)
    lat = torch.tensor([10.0, -45.0, 89.9], dtype=torch.float64)
    lon = torch.tensor([20.0, 179.9, 0.0], dtype=torch.float64)
    e = shdd.encode(lat, lon, 31) + 0.1 * torch.randn(3, 32 * 32, generator=g, dtype=torch.float64)
    a_lat, a_lon, a_mass = shdd.decode(e)
    b_lat, b_lon, b_mass = shdd.decode(e, with_mass=False)
    assert float(great_circle_km(a_lat, a_lon, b_lat, b_lon).max()) < 1e-6
    assert torch.isnan(b_mass).all() and (a_mass > 0).all()


@pytest.mark.gpu
def test_a_batch_decoded_on_cuda_lands_where_the_cpu_decode_does():
    """The decoder picks each row's winning candidate on the device (no host round trip per
    candidate); a noisy batch of 64 at L = 47 decodes to the CPU's points."""
    gen = torch.Generator().manual_seed(5)
    lat, lon = fibonacci_lattice(64)
    e = shdd.encode(lat, lon, 47)
    e = e + 0.1 * e.std() * torch.randn(e.shape, generator=gen, dtype=e.dtype)
    cpu_lat, cpu_lon, _ = shdd.decode(e)
    gpu_lat, gpu_lon, _ = shdd.decode(e.cuda())
    assert gpu_lat.device.type == "cuda"
    assert float(great_circle_km(gpu_lat.cpu(), gpu_lon.cpu(), cpu_lat, cpu_lon).max()) < 0.5
