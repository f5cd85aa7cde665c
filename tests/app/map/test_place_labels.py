"""Place names of the offline map: chosen by zoom and population, never overlapping."""

from __future__ import annotations

import numpy as np
import pytest

from app.map import place_labels as pl


def _records(*rows):
    return [
        {"city": name, "latitude": lat, "longitude": lon, "population": pop}
        for name, lat, lon, pop in rows
    ]


@pytest.fixture(scope="module")
def shipped():
    return pl.LabelIndex.shipped()


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _boxes(labels, zoom):
    lat = np.array([p.lat for p in labels])
    lon = np.array([p.lon for p in labels])
    x, y = pl._pixel(lat, lon, zoom)
    boxes = []
    for p, px, py in zip(labels, x, y, strict=True):
        w, h = pl.label_box(p.name, p.size_class)
        left = px - pl.DOT_PX / 2 - pl.GAP_PX
        boxes.append((left, py - h / 2, left + w, py + h / 2))
    return boxes


def test_the_world_shows_only_great_cities_largest_first(shipped):
    labels = shipped.labels(-80, -180, 80, 180, 2)
    assert 10 <= len(labels) <= pl.LABEL_LIMIT
    assert all(p.population >= pl.min_population(2) for p in labels)
    names = [p.name for p in labels]
    assert {"Tokyo", "Shanghai"} & set(names)
    populations = [p.population for p in labels]
    assert populations == sorted(populations, reverse=True)


def test_a_valley_shows_its_villages(shipped):
    # Around Arezzo at zoom 11: small places appear, every one inside the view.
    labels = shipped.labels(43.40, 11.80, 43.52, 11.96, 11)
    assert "Arezzo" in [p.name for p in labels]
    assert any(p.population < 10_000 for p in labels)
    assert all(43.40 <= p.lat <= 43.52 and 11.80 <= p.lon <= 11.96 for p in labels)
    assert {p.size_class for p in labels} >= {1, 3}


@pytest.mark.parametrize("zoom", [2, 5, 8, 12])
def test_labels_never_overlap(shipped, zoom):
    span = 360 / 2**zoom * 3
    labels = shipped.labels(48.0 - span / 4, 2.0 - span / 2, 48.0 + span / 4, 2.0 + span / 2, zoom)
    boxes = _boxes(labels, zoom)
    assert labels
    for i in range(len(boxes)):
        for j in range(i):
            assert not _overlap(boxes[i], boxes[j]), (labels[i].name, labels[j].name)


def test_the_larger_place_wins_a_collision():
    index = pl.LabelIndex(
        _records(("Smallville", 10.0, 10.001, 5_000), ("Bigtown", 10.0, 10.0, 500_000))
    )
    assert [p.name for p in index.labels(9, 9, 11, 11, 12)] == ["Bigtown"]
    # far enough apart on screen at a closer zoom: both
    assert [p.name for p in index.labels(9.99, 9.99, 10.01, 10.01, 18)] == [
        "Bigtown",
        "Smallville",
    ]


def test_population_threshold_rises_as_the_view_widens():
    zooms = [z for z, _ in pl.ZOOM_POPULATION]
    thresholds = [pl.min_population(z) for z in zooms]
    assert thresholds == sorted(thresholds, reverse=True)
    assert pl.min_population(2) == 2_000_000 and pl.min_population(15) == 0
    assert [pl.size_class(p) for p in (2_000_000, 150_000, 20_000, 1_500)] == [0, 1, 2, 3]


def test_a_view_across_the_antimeridian_labels_the_copy_in_view():
    index = pl.LabelIndex(
        _records(("Suva", -18.14, 178.44, 90_000), ("Apia", -13.83, -171.76, 40_000))
    )
    labels = index.labels(-25, 170, -10, 200, 6)  # Leaflet: east of 180 is the next copy
    by_name = {p.name: p for p in labels}
    assert by_name["Suva"].lon == pytest.approx(178.44)
    assert by_name["Apia"].lon == pytest.approx(-171.76 + 360)


def test_degenerate_views_give_no_labels():
    index = pl.LabelIndex(_records(("Bigtown", 10.0, 10.0, 500_000)))
    assert index.labels(11, 9, 9, 11, 5) == []  # south above north
    assert index.labels(9, 11, 11, 11, 5) == []  # no width
    assert index.labels(float("nan"), 9, 11, 11, 5) == []
    assert [p.name for p in index.labels(-90, -540, 90, 540, 1)] == []  # too small for zoom 1
    assert [p.name for p in index.labels(-90, -540, 90, 540, 5)] == ["Bigtown"]
