"""Exporting predictions: CSV for spreadsheets, GeoJSON for GIS tools, GPX for GPS devices.

One :class:`PredictionRecord` per photo: the best location (the decoder's mode), the centre the
paper reports (the density's spherical mean), confidence radii for given probability masses,
the top candidates, the photo's own EXIF position when it has one (and the great-circle error
against it) and a place name.

CSV is UTF-8 with a header row. Text cells that a spreadsheet would run as a formula (starting
with ``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'`` (the OWASP
advice); numbers are written as numbers, so negative coordinates stay numeric. GeoJSON puts
coordinates in its own ``[lon, lat]`` order; GPX holds one waypoint per photo.
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

from locdiff_core.geo import great_circle_km
from locdiff_core.photo.safe_io import write_bytes_atomic

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
GPX_NS = "http://www.topografix.com/GPX/1/1"


@dataclass(frozen=True)
class Candidate:
    lat: float
    lon: float
    score: float  # probability mass or density, as the predictor reports it


@dataclass(frozen=True)
class PredictionRecord:
    """What is exported for one photo; coordinates in degrees, ``(lat, lon)`` order."""

    path: Path
    best_lat: float
    best_lon: float
    centre_lat: float
    centre_lon: float
    radii_km: tuple[tuple[float, float], ...] = ()  # (probability mass, radius km), e.g. 0.5
    candidates: tuple[Candidate, ...] = ()
    exif_lat: float | None = None
    exif_lon: float | None = None
    place: str = ""

    @property
    def error_km(self) -> float | None:
        """Great-circle distance from the best location to the EXIF position, if known."""
        if self.exif_lat is None or self.exif_lon is None:
            return None
        d = great_circle_km(self.best_lat, self.best_lon, self.exif_lat, self.exif_lon)
        return float(d)


def safe_cell(value):
    """A CSV cell that no spreadsheet evaluates: text starting a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def _mass_label(mass: float) -> str:
    return f"{mass * 100:g}".replace(".", "_")


def csv_text(records: Sequence[PredictionRecord]) -> str:
    """The CSV document (header row first) for ``records``."""
    masses = sorted({m for r in records for m, _ in r.radii_km})
    num_candidates = max((len(r.candidates) for r in records), default=0)
    header = ["file", "best_lat", "best_lon", "centre_lat", "centre_lon"]
    header += [f"radius_{_mass_label(m)}pct_km" for m in masses]
    for i in range(1, num_candidates + 1):
        header += [f"candidate{i}_lat", f"candidate{i}_lon", f"candidate{i}_score"]
    header += ["exif_lat", "exif_lon", "error_km", "place"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r in records:
        radii = dict(r.radii_km)
        row = [str(r.path), r.best_lat, r.best_lon, r.centre_lat, r.centre_lon]
        row += [radii.get(m) for m in masses]
        for i in range(num_candidates):
            c = r.candidates[i] if i < len(r.candidates) else None
            row += [None, None, None] if c is None else [c.lat, c.lon, c.score]
        row += [r.exif_lat, r.exif_lon, r.error_km, r.place]
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def _finite(value):
    return value if value is None or math.isfinite(value) else None


def geojson_dict(records: Iterable[PredictionRecord]) -> dict:
    """A GeoJSON FeatureCollection: one Point feature per photo at its best location."""
    features = []
    for r in records:
        props = {
            "file": str(r.path),
            "centre": [_finite(r.centre_lon), _finite(r.centre_lat)],
            "radii_km": {f"{m:g}": _finite(km) for m, km in r.radii_km},
            "candidates": [
                {"coordinates": [c.lon, c.lat], "score": _finite(c.score)} for c in r.candidates
            ],
            "exif": None if r.exif_lat is None else [r.exif_lon, r.exif_lat],
            "error_km": _finite(r.error_km),
            "place": r.place,
        }
        geometry = {"type": "Point", "coordinates": [r.best_lon, r.best_lat]}
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def gpx_text(records: Iterable[PredictionRecord], creator: str = "LocDiff Studio") -> str:
    """A GPX 1.1 document with one waypoint per photo at its best location."""
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": creator})
    for r in records:
        wpt = ET.SubElement(
            root, f"{{{GPX_NS}}}wpt", {"lat": f"{r.best_lat:.8f}", "lon": f"{r.best_lon:.8f}"}
        )
        ET.SubElement(wpt, f"{{{GPX_NS}}}name").text = r.path.name
        desc = r.place
        if r.error_km is not None:
            desc = f"{desc} (error {r.error_km:.1f} km)".strip()
        if desc:
            ET.SubElement(wpt, f"{{{GPX_NS}}}desc").text = desc
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_csv(records: Sequence[PredictionRecord], path: Path | str) -> None:
    write_bytes_atomic(Path(path), csv_text(records).encode("utf-8"))


def write_geojson(records: Iterable[PredictionRecord], path: Path | str) -> None:
    text = json.dumps(geojson_dict(records), ensure_ascii=False, allow_nan=False, indent=1)
    write_bytes_atomic(Path(path), text.encode("utf-8"))


def write_gpx(records: Iterable[PredictionRecord], path: Path | str) -> None:
    write_bytes_atomic(Path(path), gpx_text(records).encode("utf-8"))
