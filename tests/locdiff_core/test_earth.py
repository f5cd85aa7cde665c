"""The torch-free great-circle distance agrees with the tensor one, from a millimetre to the
antipode."""

import math

import pytest
import torch

from locdiff_core import earth, geo


def test_float_distance_matches_the_tensor_distance():
    one_mm_deg = 1e-6 / earth.EARTH_RADIUS_KM * 180 / math.pi
    pairs = [
        (0.0, 0.0, 90.0, 0.0),
        (0.0, 0.0, 0.0, 180.0),
        (48.8566, 2.3522, 51.5074, -0.1278),
        (-33.8568, 151.2153, 33.8568, -28.7847),  # antipodes
        (10.0, 20.0, 10.0 + one_mm_deg, 20.0),
        (89.9, -179.9, 89.9, 179.9),
    ]
    for lat1, lon1, lat2, lon2 in pairs:
        expected = geo.great_circle_km(
            *(torch.tensor(v, dtype=torch.float64) for v in (lat1, lon1, lat2, lon2))
        ).item()
        got = earth.great_circle_distance_km(lat1, lon1, lat2, lon2)
        assert isinstance(got, float)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert geo.EARTH_RADIUS_KM == earth.EARTH_RADIUS_KM
