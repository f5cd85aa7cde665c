"""Place names for the offline map: which GeoNames places to label in a view, by zoom and size.

Qt-free. The places are the GeoNames extract the app already ships for reverse geocoding
(``locdiff_core.photo.geocode``: about 155,000 places of 1,000 people or more). A view gets the
largest places inside it whose population suits the zoom (a continent shows cities of a
million, a valley its villages), then a greedy pass in screen pixels drops any label that would
overlap a larger one, so the names never pile up. Each label has a size class (0 largest) for
its font.

Views that cross the antimeridian (Leaflet's longitudes run past +-180 when the user pans
around the world) get labels at the longitudes of the copy of the world on screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LABEL_LIMIT = 90  # labels in one view at most
CANDIDATE_LIMIT = 4000  # the largest places in view considered for the greedy placement
TILE_PX = 256  # Web Mercator: the world is TILE_PX * 2**zoom pixels wide
# (zoom at or above, smallest population labelled): a continent, a country, a region, a valley
ZOOM_POPULATION = ((0, 2_000_000), (3, 750_000), (4, 250_000), (5, 80_000), (6, 25_000),
                   (7, 8_000), (8, 2_500), (9, 0))  # fmt: skip
CLASS_POPULATION = (1_000_000, 100_000, 10_000)  # size classes 0..3 by population
CHAR_PX = (7.5, 6.8, 6.2, 5.8)  # average glyph width of each class's font (map.css)
LINE_PX = (16, 15, 14, 13)
DOT_PX = 8  # the town's dot and the gap before its name
GAP_PX = 4  # the empty border around every label


@dataclass(frozen=True)
class PlaceLabel:
    """One name to draw: at ``lat``/``lon`` (degrees; ``lon`` on the world copy in view)."""

    name: str
    lat: float
    lon: float
    population: int
    size_class: int  # 0: a city of a million or more ... 3: a village


def min_population(zoom: float) -> int:
    """The smallest population labelled at ``zoom``."""
    smallest = ZOOM_POPULATION[0][1]
    for at, population in ZOOM_POPULATION:
        if zoom >= at:
            smallest = population
    return smallest


def size_class(population: int) -> int:
    """0 for a city of a million or more, 1 from 100,000, 2 from 10,000, 3 below."""
    return sum(population < bound for bound in CLASS_POPULATION)


def label_box(name: str, cls: int) -> tuple[float, float]:
    """The width and height in pixels a label takes, with its dot and border."""
    return DOT_PX + CHAR_PX[cls] * len(name) + 2 * GAP_PX, LINE_PX[cls] + 2 * GAP_PX


def _pixel(lat: np.ndarray, lon: np.ndarray, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator pixel coordinates at ``zoom`` (x from -180 degrees, y from the north edge)."""
    scale = TILE_PX * 2.0**zoom
    lat_r = np.radians(np.clip(lat, -85.0511, 85.0511))
    x = (lon + 180.0) / 360.0 * scale
    y = (1.0 - np.log(np.tan(lat_r) + 1.0 / np.cos(lat_r)) / math.pi) / 2.0 * scale
    return x, y


class LabelIndex:
    """The places, largest first, as arrays for fast view queries."""

    def __init__(self, records: list[dict]) -> None:
        order = sorted(range(len(records)), key=lambda i: -int(records[i]["population"]))
        self._names = [str(records[i]["city"]) for i in order]
        self._lat = np.array([records[i]["latitude"] for i in order], dtype=np.float64)
        self._lon = np.array([records[i]["longitude"] for i in order], dtype=np.float64)
        self._population = np.array([records[i]["population"] for i in order], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._names)

    @classmethod
    def shipped(cls) -> LabelIndex:
        """The index of the GeoNames places the app ships (about one second to build)."""
        from locdiff_core.photo.geocode import shared_geocoder

        return cls(shared_geocoder().records())

    def labels(
        self,
        south: float,
        west: float,
        north: float,
        east: float,
        zoom: float,
        *,
        limit: int = LABEL_LIMIT,
    ) -> list[PlaceLabel]:
        """The labels of the view ``south..north``, ``west..east`` (degrees; ``west``/``east``
        may run past +-180) at ``zoom``: largest first, none overlapping another."""
        if not (math.isfinite(south + west + north + east + zoom) and north > south):
            return []
        span = east - west
        if span <= 0:
            return []
        if span >= 360.0:
            west, span = -180.0, 360.0
        lon = west + np.mod(self._lon - west, 360.0)  # each place on the copy right of west
        inside = (self._lat >= south) & (self._lat <= north) & (lon <= west + span)
        inside &= self._population >= min_population(zoom)
        chosen = np.flatnonzero(inside)[:CANDIDATE_LIMIT]
        x, y = _pixel(self._lat[chosen], lon[chosen], zoom)
        placed: list[tuple[float, float, float, float]] = []
        labels: list[PlaceLabel] = []
        for i, px, py in zip(chosen.tolist(), x.tolist(), y.tolist(), strict=True):
            population = int(self._population[i])
            cls = size_class(population)
            width, height = label_box(self._names[i], cls)
            left = px - DOT_PX / 2 - GAP_PX
            box = (left, py - height / 2, left + width, py + height / 2)
            if any(
                box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed
            ):
                continue
            placed.append(box)
            labels.append(
                PlaceLabel(self._names[i], float(self._lat[i]), float(lon[i]), population, cls)
            )
            if len(labels) >= limit:
                break
        return labels
