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
are empty cells. Coordinates are rounded to 1e-7 degrees (about 1 cm) and distances to 0.1 m,
so no float noise (``-68.02734375000001``) reaches a file. GeoJSON's geometry is in its own
``[lon, lat]`` order, at the location; the positions among the properties name ``lat`` and
``lon`` explicitly. GPX (pretty-printed) holds one waypoint per photo at its location, with the
source as its ``type``, the altitude as ``ele`` and the capture time (UTC) as ``time`` when
known.
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
    alt_m: float | None = None  # altitude of the location, metres
    taken_utc: str | None = None  # capture time, ISO 8601 UTC ("2024-06-01T10:05:00Z")

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


DEGREE_DIGITS = 7  # 1e-7 degrees: about 1 cm
KM_DIGITS = 4  # 0.1 m


def _deg(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), DEGREE_DIGITS)


def _km(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), KM_DIGITS)


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
    header += ["alt_m", "taken_utc"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r in records:
        radii = dict(r.radii_km)
        lat, lon, source = r.location
        row = [str(r.path), _deg(lat), _deg(lon), source]
        row += [_deg(v) for v in (r.best_lat, r.best_lon, r.centre_lat, r.centre_lon)]
        row += [r.engine]
        row += [_km(radii.get(m)) for m in masses]
        for i in range(num_candidates):
            c = r.candidates[i] if i < len(r.candidates) else None
            row += [None, None, None] if c is None else [_deg(c.lat), _deg(c.lon), c.score]
        row += [_deg(v) for v in (r.exif_lat, r.exif_lon, r.confirmed_lat, r.confirmed_lon)]
        row += [_km(r.error_km), r.place, None if r.alt_m is None else round(r.alt_m, 1)]
        row += [r.taken_utc]
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def _finite(value):
    return value if value is None or math.isfinite(value) else None


def _lat_lon(lat, lon) -> dict[str, float | None] | None:
    """``{"lat": ..., "lon": ...}`` of a position (named: no order to guess), or None."""
    if lat is None or lon is None:
        return None
    return {"lat": _deg(lat), "lon": _deg(lon)}


def geojson_dict(records: Iterable[PhotoRecord]) -> dict:
    """A GeoJSON FeatureCollection: one Point feature per photo at its location."""
    features = []
    for r in records:
        lat, lon, source = r.location
        props = {
            "file": str(r.path),
            "location_source": source,
            "best": _lat_lon(r.best_lat, r.best_lon),
            "centre": _lat_lon(r.centre_lat, r.centre_lon),
            "engine": r.engine or None,
            "radii_km": {f"{m:g}": _km(km) for m, km in r.radii_km},
            "candidates": [
                {**_lat_lon(c.lat, c.lon), "score": _finite(c.score)} for c in r.candidates
            ],
            "exif": _lat_lon(r.exif_lat, r.exif_lon),
            "confirmed": _lat_lon(r.confirmed_lat, r.confirmed_lon),
            "error_km": _km(r.error_km),
            "place": r.place,
            "alt_m": None if r.alt_m is None else round(r.alt_m, 1),
            "taken_utc": r.taken_utc,
        }
        coordinates = [_deg(lon), _deg(lat)]
        if r.alt_m is not None:
            coordinates.append(round(r.alt_m, 1))
        geometry = {"type": "Point", "coordinates": coordinates}
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def gpx_text(records: Iterable[PhotoRecord], creator: str = "LocDiff Studio") -> str:
    """A GPX 1.1 document with one waypoint per photo at its location; the waypoint's
    ``type`` is the location's source, its description the place and the guess's error."""
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": creator})
    for r in records:
        lat, lon, source = r.location
        wpt = ET.SubElement(root, f"{{{GPX_NS}}}wpt", {"lat": f"{lat:.7f}", "lon": f"{lon:.7f}"})
        if r.alt_m is not None:  # GPX's order: ele, time, name, ..., desc, ..., type
            ET.SubElement(wpt, f"{{{GPX_NS}}}ele").text = f"{r.alt_m:.1f}"
        if r.taken_utc:
            ET.SubElement(wpt, f"{{{GPX_NS}}}time").text = r.taken_utc
        ET.SubElement(wpt, f"{{{GPX_NS}}}name").text = r.path.name
        desc = r.place
        if r.error_km is not None:
            desc = f"{desc} (model's guess off by {r.error_km:.1f} km)".strip()
        if desc:
            ET.SubElement(wpt, f"{{{GPX_NS}}}desc").text = desc
        ET.SubElement(wpt, f"{{{GPX_NS}}}type").text = source
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_csv(records: Sequence[PhotoRecord], path: Path | str) -> None:
    write_bytes_atomic(Path(path), csv_text(records).encode("utf-8"))


def write_geojson(records: Iterable[PhotoRecord], path: Path | str) -> None:
    text = json.dumps(geojson_dict(records), ensure_ascii=False, allow_nan=False, indent=1)
    write_bytes_atomic(Path(path), text.encode("utf-8"))


def write_gpx(records: Iterable[PhotoRecord], path: Path | str) -> None:
    write_bytes_atomic(Path(path), gpx_text(records).encode("utf-8"))
