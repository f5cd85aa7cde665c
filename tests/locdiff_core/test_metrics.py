import json
import math

import numpy as np
import pytest
import torch

from locdiff_core import metrics
from locdiff_core.geo import EARTH_RADIUS_KM, great_circle_km


def test_thresholds_and_keys():
    assert metrics.THRESHOLDS_KM == (1, 25, 200, 750, 2500)
    keys = set(metrics.summarize([0.0]))
    assert keys == {
        "count",
        "acc_1km",
        "acc_25km",
        "acc_200km",
        "acc_750km",
        "acc_2500km",
        "median_km",
        "mean_km",
        "geoscore",
    }


def test_geoscore_values():
    s = metrics.geoscore(torch.tensor([0.0, 1492.7, 2 * 1492.7], dtype=torch.float64))
    assert s.tolist() == pytest.approx([5000.0, 5000.0 / math.e, 5000.0 / math.e**2], rel=1e-12)
    # float32 in, float32 out
    assert metrics.geoscore(torch.zeros(3)).dtype == torch.float32


def test_summarize_hand_checked():
    # 0.5 is within every threshold; 1.0 sits exactly on the 1 km threshold and counts (<=).
    d = [0.5, 1.0, 20.0, 199.0, 700.0, 2400.0, 3000.0, 10000.0]
    s = metrics.summarize(d)
    assert s["count"] == 8
    assert s["acc_1km"] == pytest.approx(25.0)  # 2 of 8
    assert s["acc_25km"] == pytest.approx(37.5)  # 3 of 8
    assert s["acc_200km"] == pytest.approx(50.0)
    assert s["acc_750km"] == pytest.approx(62.5)
    assert s["acc_2500km"] == pytest.approx(75.0)
    assert s["median_km"] == pytest.approx((199.0 + 700.0) / 2)
    assert s["mean_km"] == pytest.approx(sum(d) / 8)
    expected = sum(5000.0 * math.exp(-x / 1492.7) for x in d) / 8
    assert s["geoscore"] == pytest.approx(expected, rel=1e-12)
    json.dumps(s)  # plain Python numbers


def test_summarize_accepts_numpy_and_torch_alike():
    d = np.array([3.0, 30.0, 300.0], dtype=np.float32)
    a = metrics.summarize(d)
    b = metrics.summarize(torch.from_numpy(d))
    assert a == b
    assert a["median_km"] == pytest.approx(30.0)
    assert a["acc_25km"] == pytest.approx(100.0 / 3)


def test_summarize_of_great_circle_errors():
    # Predictions a quarter and a half of the equator away; one exact.
    f64 = torch.float64
    true_lat = torch.zeros(3, dtype=f64)
    true_lon = torch.zeros(3, dtype=f64)
    pred_lat = torch.tensor([0.0, 0.0, 90.0], dtype=f64)
    pred_lon = torch.tensor([0.0, 180.0, 0.0], dtype=f64)
    s = metrics.summarize(great_circle_km(pred_lat, pred_lon, true_lat, true_lon))
    quarter = math.pi / 2 * EARTH_RADIUS_KM
    assert s["median_km"] == pytest.approx(quarter)
    assert s["acc_1km"] == pytest.approx(100.0 / 3)
    assert s["acc_2500km"] == pytest.approx(100.0 / 3)


def test_summarize_errors():
    with pytest.raises(ValueError, match="at least one distance"):
        metrics.summarize([])
    with pytest.raises(ValueError, match=r"distance_km\[1\] is nan"):
        metrics.summarize([1.0, float("nan")])
    with pytest.raises(ValueError, match=r"distance_km\[2\] = -5 km is negative"):
        metrics.summarize([1.0, 2.0, -5.0])
