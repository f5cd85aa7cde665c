"""Time fused with the model: a bimodal prediction where a neighbour in time picks the right
mode, a photo bounded from both sides, a prior narrower than a grid cell, the window."""

import numpy as np
import pytest
from timed_photos import bumps

from locdiff_core.display_grid import cell_areas, cell_centres
from locdiff_core.earth import great_circle_distance_km
from locdiff_core.time_fusion import Neighbour, TimePrior, fuse, log_prior

AREZZO, SANTIAGO = (43.4674, 11.8851), (-33.45, -70.67)


def km(a, b) -> float:
    return great_circle_distance_km(a[0], a[1], b[0], b[1])


@pytest.fixture(scope="module")
def bimodal():
    return bumps((AREZZO, 0.4), (SANTIAGO, 0.6))  # the model prefers Chile


def test_a_neighbour_in_time_picks_the_right_mode(bimodal):
    florence = Neighbour(43.7696, 11.2558, -2 * 3600.0, "IMG_0001.jpg")  # two hours before
    guess = fuse(bimodal, [florence])
    assert km(guess.best, AREZZO) < 250 and km(guess.best, (florence.lat, florence.lon)) <= 241
    assert guess.radius90_km <= 241 and 0 < guess.radius50_km <= guess.radius90_km
    assert guess.used == (florence,)
    assert guess.why == "bounded by IMG_0001.jpg (2.0 h before, within 241 km) at up to 120 km/h"
    area = cell_areas(*bimodal.shape)
    assert float((guess.density * area).sum()) == pytest.approx(1.0, abs=1e-5)
    assert 0.05 < guess.model_share < 0.5  # Italy held some of the model's mass
    # without time, the model's own answer is Chile
    i, j = np.unravel_index(int(np.argmax(bimodal)), bimodal.shape)
    lat, lon = cell_centres(*bimodal.shape)
    assert km((lat[i], lon[j]), SANTIAGO) < 300


def test_a_photo_between_two_known_ones_is_bounded_from_both_sides():
    flat = np.full((90, 180), 1.0 / (4 * np.pi))
    a = Neighbour(43.0, 11.0, -1800.0, "a.jpg")  # 30 min before
    b = Neighbour(43.0, 12.0, 1800.0, "b.jpg")  # 30 min after; 81 km east of a
    guess = fuse(flat, [a, b])
    reach = TimePrior().reach_km(1800.0)  # 61 km
    assert km(guess.best, (a.lat, a.lon)) <= reach and km(guess.best, (b.lat, b.lon)) <= reach
    assert "a.jpg (30 min before, within 61 km), b.jpg (30 min after, within 61 km)" in guess.why
    assert "so the time bound decides" in guess.why  # a flat model has little mass there


def test_a_prior_narrower_than_a_cell_still_lands_on_the_point():
    flat = np.full((90, 180), 1.0 / (4 * np.pi))  # 2-degree cells, about 220 km
    near = Neighbour(43.4674, 11.8851, 60.0, "next.jpg")  # a minute later: within 3 km
    guess = fuse(flat, [near])
    assert km(guess.best, AREZZO) <= TimePrior().reach_km(60.0)
    assert guess.radius90_km <= 3.0


def test_only_neighbours_within_the_window_count(bimodal):
    far = Neighbour(43.7696, 11.2558, -10 * 3600.0)
    assert fuse(bimodal, [far]) is None
    assert fuse(bimodal, [far], TimePrior(window_s=12 * 3600.0)) is not None


def test_the_prior_is_a_soft_cap_per_neighbour():
    n = Neighbour(0.0, 0.0, 3600.0)  # reach 121 km
    lat = np.array([0.0, 0.0, 0.0])
    lon = np.array([0.0, 121.0 / 111.2, 3.0])  # at the centre, at the reach, far outside
    lp = log_prior(lat, lon, [n], TimePrior())
    assert lp[0] > np.log(0.99) and lp[1] == pytest.approx(np.log(0.5), abs=0.05) and lp[2] < -10
    with pytest.raises(ValueError, match="max_speed_kmh must be a positive number"):
        TimePrior(max_speed_kmh=0)
