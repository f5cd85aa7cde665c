"""GeoCLIP's retrieval head: probabilities, candidates, radii and density of a made-up gallery."""

import math

import numpy as np
import pytest
import torch
from geoclip_helpers import cluster, made_up_head, raw_feature

from locdiff_core.display_grid import cell_areas
from locdiff_core.engines import Engine
from locdiff_core.geo import great_circle_km
from locdiff_core.geoclip import RetrievalConfig
from locdiff_core.geoclip.gallery import gallery_density

PARIS, TOKYO, LIMA = (48.86, 2.35), (35.68, 139.69), (-12.05, -77.04)


@pytest.fixture
def head():
    # 30 points around Paris (direction 0), 10 around Tokyo (1), one in Lima (2)
    latlon = np.concatenate([cluster(*PARIS, 30, seed=0), cluster(*TOKYO, 10, seed=1), [LIMA]])
    return made_up_head(latlon, [0] * 30 + [1] * 10 + [2])


def test_probabilities_follow_geoclips_formula(head):
    raw = raw_feature({0: 1.0, 1: 2.0})
    image = torch.nn.functional.normalize(raw[:, :512], dim=1)
    expected = torch.softmax(40.0 * image @ head.gallery.features.T, dim=1)
    got = torch.softmax(head.logits(raw), dim=1)
    assert torch.allclose(got, expected, atol=1e-7)


def test_mass_beats_the_single_top_point(head):
    # Lima alone is the most probable point, but Paris as a whole holds more probability: the
    # best guess is in Paris, the paper's answer (top point) stays Lima
    raw = raw_feature({0: 1.0, 2: 1.05})
    (pred,) = head.predict(raw, RetrievalConfig(num_points=5))
    probs = torch.softmax(head.logits(raw), dim=1)[0].double().numpy()  # float32, as GeoCLIP
    probs /= probs.sum()
    assert pred.engine is Engine.GEOCLIP
    assert pred.centre == tuple(head.gallery.latlon[40])  # Lima
    assert float(great_circle_km(*pred.best, *PARIS)) < 20
    paris, lima = pred.candidates  # Tokyo's probability is negligible: no candidate
    assert math.isclose(paris.share, probs[:30].sum(), rel_tol=1e-9)
    assert (lima.lat, lima.lon) == LIMA and math.isclose(lima.share, probs[40], rel_tol=1e-9)
    assert paris.share + lima.share == pytest.approx(1.0)
    assert pred.samples.shape == (5, 2)
    # the best guess is Paris's most probable point: all Paris points tie, the first wins
    assert pred.best == tuple(head.gallery.latlon[0])


def test_radii_hold_the_stated_probability(head):
    raw = raw_feature({0: 1.0, 1: 0.9})
    (pred,) = head.predict(raw)
    probs = torch.softmax(head.logits(raw), dim=1)[0].double().numpy()
    probs /= probs.sum()
    dist = great_circle_km(*pred.best, head.gallery.latlon[:, 0], head.gallery.latlon[:, 1])
    dist = np.asarray(dist)
    for radius, q in ((pred.radius50_km, 0.5), (pred.radius90_km, 0.9)):
        inside = probs[dist <= radius + 1e-6].sum()
        strictly = probs[dist < radius - 1e-6].sum()
        assert inside >= q - 1e-12 > strictly  # the smallest radius that holds q


def test_masks_restrict_and_an_empty_mask_gives_none(head):
    raw = raw_feature({0: 1.0, 1: 2.0})
    mask = torch.zeros(2, len(head.gallery), dtype=torch.bool)
    mask[0, :30] = True  # Paris only
    a, b = head.predict(torch.cat([raw, raw]), masks=mask)
    assert b is None
    assert float(great_circle_km(*a.best, *PARIS)) < 20 and a.candidates[0].share == 1.0


def test_density_holds_the_probability_on_the_sphere(head):
    raw = raw_feature({0: 1.0, 1: 1.0, 2: 1.0})
    (pred,) = head.predict(raw, density_size=(90, 180))
    total = float((pred.density * cell_areas(90, 180)).sum())
    assert total == pytest.approx(1.0, rel=1e-5)
    row, col = np.unravel_index(np.argmax(pred.density), pred.density.shape)
    assert abs((90 - (row + 0.5) * 2) - PARIS[0]) < 4  # north up, -180 at column 0
    assert abs((-180 + (col + 0.5) * 2) - PARIS[1]) < 4


def test_density_keeps_mass_at_the_poles_and_the_date_line():
    latlon = np.array([[89.9, 179.9], [-89.9, -179.9]])
    density = gallery_density(np.array([0.5, 0.5]), latlon, (18, 36))
    assert float((density * cell_areas(18, 36)).sum()) == pytest.approx(1.0)


def test_bad_feature_width_is_refused(head):
    with pytest.raises(ValueError, match="768"):
        head.predict(torch.zeros(1, 512))
