"""LocDiff-H: GeoCLIP's retrieval restricted to LocDiffusion's regions."""

import numpy as np
import pytest
import torch
from geoclip_helpers import cluster, made_up_head, raw_feature

from locdiff_core.engines import Engine
from locdiff_core.geo import great_circle_km
from locdiff_core.hybrid import hybrid_predict, region_masks
from locdiff_core.predictor import Candidate, LocationPrediction

PARIS, TOKYO = (48.86, 2.35), (35.68, 139.69)


def locdiff_guess(samples) -> LocationPrediction:
    samples = np.asarray(samples, dtype=np.float64)
    best = tuple(samples[0])
    return LocationPrediction(best, best, (Candidate(*best, 1.0),), 1.0, 2.0, samples)


def test_the_hybrid_retrieves_inside_locdiffusions_regions():
    # GeoCLIP alone prefers Tokyo; LocDiffusion's samples say Paris: the hybrid answers with the
    # most probable gallery point near Paris, not LocDiffusion's sample and not Tokyo
    latlon = np.concatenate([cluster(*PARIS, 20, seed=0), cluster(*TOKYO, 20, seed=1)])
    directions = list(range(20)) + [100] * 20  # each Paris point its own direction
    head = made_up_head(latlon, directions)
    raw = raw_feature({100: 3.0, 7: 1.0, 3: 0.5})  # Tokyo strongest; Paris point 7 next
    (alone,) = head.predict(raw)
    assert float(great_circle_km(*alone.best, *TOKYO)) < 20
    samples = [(48.0, 2.0), (48.3, 2.5), (47.9, 1.8)]  # 50-100 km from the Paris points
    (hybrid,) = hybrid_predict(head, raw, [locdiff_guess(samples)])
    assert hybrid.engine is Engine.HYBRID
    assert hybrid.best == tuple(latlon[7]) and hybrid.centre == tuple(latlon[7])
    assert sum(c.share for c in hybrid.candidates) == pytest.approx(1.0)
    np.testing.assert_array_equal(hybrid.samples, samples)  # LocDiffusion's samples are kept


def test_no_gallery_point_near_the_samples_falls_back_to_locdiffusion():
    head = made_up_head(cluster(*PARIS, 5), [0] * 5)
    own = locdiff_guess([(-40.0, -120.0)])  # the South Pacific
    (pred,) = hybrid_predict(head, raw_feature({0: 1.0}), [own])
    assert pred.engine is Engine.LOCDIFF and pred.best == own.best


def test_region_masks_use_the_great_circle_radius():
    # points due north of the sample at 199 and 201 km, due east at 199 and 201 km, and one
    # across the date line 150 km away
    deg = 180.0 / np.pi / 6371.0088
    east = deg / np.cos(np.radians(10.0))
    latlon = [
        (10.0 + 199 * deg, 20.0),
        (10.0 + 201 * deg, 20.0),
        (10.0, 20.0 + 199 * east),
        (10.0, 20.0 + 201.5 * east),  # a parallel is not a great circle: 201.5 km on it is >200
        (0.0, -179.5),
    ]
    gallery = made_up_head(latlon, [0] * 5).gallery
    samples = [np.array([[10.0, 20.0]]), np.array([[0.0, 179.9], [50.0, 0.0]]), np.zeros((0, 2))]
    mask = region_masks(gallery, samples, 200.0)
    assert mask.tolist() == [
        [True, False, True, False, False],
        [False, False, False, False, True],
        [False] * 5,
    ]
    rng = np.random.default_rng(0)  # and the banded search equals the brute-force test
    cloud = made_up_head(
        np.column_stack((rng.uniform(-90, 90, 2000), rng.uniform(-180, 180, 2000))), [0] * 2000
    ).gallery
    points = [
        np.column_stack((rng.uniform(-90, 90, 5), rng.uniform(-180, 180, 5))) for _ in range(4)
    ]
    fast = region_masks(cloud, points, 1500.0)
    for row, pts in zip(fast, points, strict=True):
        d = great_circle_km(
            cloud.latlon[:, None, 0], cloud.latlon[:, None, 1], pts[None, :, 0], pts[None, :, 1]
        )
        assert torch.equal(row, torch.as_tensor(np.asarray(d).min(1) <= 1500.0))
    with pytest.raises(ValueError, match="positive"):
        region_masks(gallery, samples, 0.0)
