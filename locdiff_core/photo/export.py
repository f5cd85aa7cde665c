"""Exporting photo locations: CSV for spreadsheets, GeoJSON for GIS tools, GPX for GPS devices.

One :class:`PhotoRecord` per photo. Every record has one *location*, the position the photo is
exported at, and says where it came from (``location_source``), in this order of trust:

* ``confirmed``: the user's choice (accepted, dragged, typed or clicked);
* ``exif``: the position stored in the photo's own GPS tags;
* ``predicted``: the engine's best guess.

Next to it come whatever else is known: the prediction (best location; the centre the engine's
paper reports, LocDiffusion's centre of the samples or GeoCLIP's top gallery point; the engine
that made it; radii holding given shares of the samples or probability; the top candidates),
the EXIF and confirmed positions, the great-circle error of the best guess against the EXIF
position, and a place name. A photo with no location at all is not a record.

CSV is UTF-8 with a header row. Text cells that a spreadsheet would run as a formula (starting
with ``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'`` (the OWASP
advice); numbers are written as numbers, so negative coordinates stay numeric; unknown values
are empty cells. GeoJSON puts coordinates in its own ``[lon, lat]`` order, the geometry at the
location; GPX holds one waypoint per photo at its location, with the source as its ``type``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from locdiff_core.earth import great_circle_distance_km
from locdiff_core.photo.safe_io import write_bytes_atomic

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
GPX_NS = "http://www.topografix.com/GPX/1/1"


@dataclass(frozen=True)
class Candidate:
    lat: float
    lon: float
    score: float  # probability mass or density, as the predictor reports it


LOCATION_SOURCES = ("confirmed", "exif", "predicted")  # most trusted first


@dataclass(frozen=True)
class PhotoRecord:
    """What is exported for one photo; coordinates in degrees, ``(lat, lon)`` order.

    The prediction fields are None for a photo that was not predicted; such a photo needs an
    EXIF or a confirmed position (a record needs a location)."""

    path: Path
    best_lat: float | None = None
    best_lon: float | None = None
    centre_lat: float | None = None
    centre_lon: float | None = None
    radii_km: tuple[tuple[float, float], ...] = ()  # (probability mass, radius km), e.g. 0.5
    candidates: tuple[Candidate, ...] = ()
    exif_lat: float | None = None
    exif_lon: float | None = None
    place: str = ""  # the place name at the location
    confirmed_lat: float | None = None
    confirmed_lon: float | None = None
    engine: str = ""  # the engine of the prediction (locdiff_core.engines), "" if none

    def __post_init__(self) -> None:
        if self.location is None:
            raise ValueError(
                f"{self.path}: nothing to export, the photo has no confirmed, EXIF or predicted "
                "location"
            )

    @property
    def predicted(self) -> bool:
        return self.best_lat is not None and self.best_lon is not None

    @property
    def location(self) -> tuple[float, float, str] | None:
        """``(lat, lon, source)``: the most trusted position known (:data:`LOCATION_SOURCES`)."""
        for lat, lon, source in (
            (self.confirmed_lat, self.confirmed_lon, "confirmed"),
            (self.exif_lat, self.exif_lon, "exif"),
            (self.best_lat, self.best_lon, "predicted"),
        ):
            if lat is not None and lon is not None:
                return float(lat), float(lon), source
        return None

    @property
    def error_km(self) -> float | None:
        """Great-circle distance from the best location to the EXIF position, if both known."""
        if not self.predicted or self.exif_lat is None or self.exif_lon is None:
            return None
        return great_circle_distance_km(self.best_lat, self.best_lon, self.exif_lat, self.exif_lon)


def safe_cell(value):
    """A CSV cell that no spreadsheet evaluates: text starting a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def _mass_label(mass: float) -> str:
    return f"{mass * 100:g}".replace(".", "_")


def csv_text(records: Sequence[PhotoRecord]) -> str:
    """The CSV document (header row first) for ``records``."""
    masses = sorted({m for r in records for m, _ in r.radii_km})
    num_candidates = max((len(r.candidates) for r in records), default=0)
    header = ["file", "lat", "lon", "location_source"]
    header += ["best_lat", "best_lon", "centre_lat", "centre_lon", "engine"]
    header += [f"radius_{_mass_label(m)}pct_km" for m in masses]
    for i in range(1, num_candidates + 1):
        header += [f"candidate{i}_lat", f"candidate{i}_lon", f"candidate{i}_score"]
    header += ["exif_lat", "exif_lon", "confirmed_lat", "confirmed_lon", "error_km", "place"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r in records:
        radii = dict(r.radii_km)
        row = [str(r.path), *r.location]
        row += [r.best_lat, r.best_lon, r.centre_lat, r.centre_lon, r.engine]
        row += [radii.get(m) for m in masses]
        for i in range(num_candidates):
            c = r.candidates[i] if i < len(r.candidates) else None
            row += [None, None, None] if c is None else [c.lat, c.lon, c.score]
        row += [r.exif_lat, r.exif_lon, r.confirmed_lat, r.confirmed_lon, r.error_km, r.place]
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def _finite(value):
    return value if value is None or math.isfinite(value) else None


def _lon_lat(lat, lon) -> list[float | None] | None:
    """GeoJSON's ``[lon, lat]`` of a position, or None when it is unknown."""
    if lat is None or lon is None:
        return None
    return [_finite(lon), _finite(lat)]


def geojson_dict(records: Iterable[PhotoRecord]) -> dict:
    """A GeoJSON FeatureCollection: one Point feature per photo at its location."""
    features = []
    for r in records:
        lat, lon, source = r.location
        props = {
            "file": str(r.path),
            "location_source": source,
            "best": _lon_lat(r.best_lat, r.best_lon),
            "centre": _lon_lat(r.centre_lat, r.centre_lon),
            "engine": r.engine or None,
            "radii_km": {f"{m:g}": _finite(km) for m, km in r.radii_km},
            "candidates": [
                {"coordinates": [c.lon, c.lat], "score": _finite(c.score)} for c in r.candidates
            ],
            "exif": _lon_lat(r.exif_lat, r.exif_lon),
            "confirmed": _lon_lat(r.confirmed_lat, r.confirmed_lon),
            "error_km": _finite(r.error_km),
            "place": r.place,
        }
        geometry = {"type": "Point", "coordinates": [lon, lat]}
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def gpx_text(records: Iterable[PhotoRecord], creator: str = "LocDiff Studio") -> str:
    """A GPX 1.1 document with one waypoint per photo at its location; the waypoint's
    ``type`` is the location's source, its description the place and the guess's error."""
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": creator})
    for r in records:
        lat, lon, source = r.location
        wpt = ET.SubElement(root, f"{{{GPX_NS}}}wpt", {"lat": f"{lat:.8f}", "lon": f"{lon:.8f}"})
        ET.SubElement(wpt, f"{{{GPX_NS}}}name").text = r.path.name
        desc = r.place
        if r.error_km is not None:
            desc = f"{desc} (model's guess off by {r.error_km:.1f} km)".strip()
        if desc:
            ET.SubElement(wpt, f"{{{GPX_NS}}}desc").text = desc
        ET.SubElement(wpt, f"{{{GPX_NS}}}type").text = source
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_csv(records: Sequence[PhotoRecord], path: Path | str) -> None:
    write_bytes_atomic(Path(path), csv_text(records).encode("utf-8"))


def write_geojson(records: Iterable[PhotoRecord], path: Path | str) -> None:
    text = json.dumps(geojson_dict(records), ensure_ascii=False, allow_nan=False, indent=1)
    write_bytes_atomic(Path(path), text.encode("utf-8"))


def write_gpx(records: Iterable[PhotoRecord], path: Path | str) -> None:
    write_bytes_atomic(Path(path), gpx_text(records).encode("utf-8"))
