"""GPX (through gpxpy) and KML/KMZ track files.

* GPX: every ``trkseg`` and every route with times is a segment; waypoints form one segment
  only when nothing else has a time. Elevation where given.
* KML/KMZ: each ``gx:Track`` (also inside ``gx:MultiTrack``) is a segment; Point Placemarks with
  a ``TimeStamp`` form one segment; a ``LineString`` with a ``TimeSpan`` gets its vertices' times
  spread at constant speed (by great-circle distance) between begin and end, and the notes say so.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import gpxpy
import gpxpy.gpx
import numpy as np

from locdiff_core.earth import great_circle_distance_km
from locdiff_core.photo.track_fixes import MAX_TRACK_BYTES, Fixes, local_name, xml_error, xml_text
from locdiff_core.photo.tracks import Track, TrackError


def read_gpx(path: Path, data: bytes) -> Track:
    try:
        gpx = gpxpy.parse(xml_text(path, data))
    except gpxpy.gpx.GPXXMLSyntaxException as exc:
        raise xml_error(path, exc) from exc
    except (gpxpy.gpx.GPXException, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise TrackError(path, f"is not a usable GPX file: {exc}") from exc
    fixes = Fixes(path)
    for track in gpx.tracks:
        for segment in track.segments:
            _add_gpx_points(fixes, segment.points, track.name)
    for route in gpx.routes:
        if any(p.time is not None for p in route.points):
            _add_gpx_points(fixes, route.points, route.name)
        elif route.points:
            fixes.count("route", "without times left out")
    if not fixes.segments and any(w.time is not None for w in gpx.waypoints):
        _add_gpx_points(fixes, gpx.waypoints, "waypoints")
    points = sum(len(s.points) for t in gpx.tracks for s in t.segments)
    found = (
        f"{len(gpx.tracks)} tracks ({points} points), {len(gpx.routes)} routes, "
        f"{len(gpx.waypoints)} waypoints"
    )
    return fixes.track(gpx.name or next((t.name for t in gpx.tracks if t.name), ""), found)


def _add_gpx_points(fixes: Fixes, points: list, name: str | None) -> None:
    rows = []
    for point in points:
        seconds = fixes.seconds(point.time)
        if seconds is not None:
            ele = math.nan if point.elevation is None else float(point.elevation)
            rows.append((seconds, float(point.latitude), float(point.longitude), ele))
    fixes.add(rows, name or "")


def read_kml(path: Path, data: bytes) -> Track:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise xml_error(path, exc) from exc
    fixes = Fixes(path)
    kinds: Counter[str] = Counter()
    points: list[tuple[float, float, float, float]] = []
    placemarks = [e for e in root.iter() if local_name(e.tag) == "Placemark"]
    for number, placemark in enumerate(placemarks, 1):
        name = _child_text(placemark, "name")
        label = name or f"Placemark #{number}"
        for geometry in placemark.iter():
            kind = local_name(geometry.tag)
            if kind == "Track":
                kinds["gx:Track"] += 1
                fixes.add(_gx_track(path, fixes, geometry, label), name)
            elif kind == "Point":
                kinds["Point"] += 1
                points.extend(_kml_point(path, fixes, placemark, geometry, label))
            elif kind == "LineString":
                kinds["LineString"] += 1
                fixes.add(_kml_line(path, fixes, placemark, geometry, label), name)
    fixes.add(points, "placemarks")
    document = next((e for e in root.iter() if local_name(e.tag) == "Document"), None)
    listed = ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "no geometry"
    found = f"{len(placemarks)} Placemarks ({listed})"
    return fixes.track("" if document is None else _child_text(document, "name"), found)


def _child_text(element: ET.Element, name: str) -> str:
    child = next((c for c in element if local_name(c.tag) == name), None)
    return "" if child is None else (child.text or "").strip()


def _gx_track(path: Path, fixes: Fixes, track: ET.Element, label: str) -> list:
    whens = [c.text for c in track if local_name(c.tag) == "when"]
    coords = [c.text or "" for c in track if local_name(c.tag) == "coord"]
    if len(whens) != len(coords):
        raise TrackError(
            path, f"gx:Track {label!r} has {len(whens)} <when> but {len(coords)} <gx:coord>"
        )
    rows = []
    for when, coord in zip(whens, coords, strict=True):
        parts = coord.split()
        try:
            lon, lat, *alt = map(float, parts)
            if len(alt) > 1:
                raise ValueError
        except ValueError:
            problem = f"gx:Track {label!r}: gx:coord {coord.strip()!r} is not 'lon lat [alt]'"
            raise TrackError(path, problem) from None
        seconds = fixes.seconds(when)
        if seconds is not None:
            rows.append((seconds, lat, lon, alt[0] if alt else math.nan))
    return rows


def _kml_coordinates(path: Path, geometry: ET.Element, label: str) -> list[tuple[float, ...]]:
    """``(lon, lat, alt)`` tuples of a geometry's ``coordinates`` (alt NaN where none)."""
    text = re.sub(r"\s*,\s*", ",", _child_text(geometry, "coordinates"))
    tuples = []
    for token in text.split():
        try:
            lon, lat, *alt = map(float, token.rstrip(",").split(","))
            if len(alt) > 1:
                raise ValueError
        except ValueError:
            raise TrackError(
                path, f"{label!r}: coordinate {token!r} is not 'lon,lat[,alt]'"
            ) from None
        tuples.append((lon, lat, alt[0] if alt else math.nan))
    return tuples


def _kml_point(path: Path, fixes: Fixes, placemark, point, label: str) -> list:
    stamp = next((e for e in placemark if local_name(e.tag) == "TimeStamp"), None)
    if stamp is None:
        fixes.count("Point Placemark", "without a time left out")
        return []
    seconds = fixes.seconds(_child_text(stamp, "when"))
    coordinates = _kml_coordinates(path, point, label)[:1]
    if seconds is None or not coordinates:
        return []
    lon, lat, alt = coordinates[0]
    return [(seconds, lat, lon, alt)]


def _kml_line(path: Path, fixes: Fixes, placemark, line, label: str) -> list:
    span = next((e for e in placemark if local_name(e.tag) == "TimeSpan"), None)
    ends = [] if span is None else [_child_text(span, "begin"), _child_text(span, "end")]
    if not all(ends) or len(ends) != 2:
        fixes.count("LineString", "without times left out")
        return []
    begin, end = fixes.seconds(ends[0]), fixes.seconds(ends[1])
    if begin is None or end is None:
        return []
    if end < begin:
        fixes.note(f"LineString {label!r} has a TimeSpan that ends before it begins; left out")
        return []
    vertices = _kml_coordinates(path, line, label)
    if not vertices:
        fixes.count("LineString", "without coordinates left out")
        return []
    steps = [
        great_circle_distance_km(a[1], a[0], b[1], b[0]) for a, b in itertools.pairwise(vertices)
    ]
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] > 0:
        fractions = along / along[-1]
    else:
        fractions = np.linspace(0.0, 1.0, len(vertices)) if len(vertices) > 1 else np.zeros(1)
    fixes.note(
        f"LineString {label!r} has times only at its ends; times between are spread at "
        "constant speed"
    )
    times = begin + (end - begin) * fractions
    return [(t, lat, lon, alt) for t, (lon, lat, alt) in zip(times, vertices, strict=True)]


def kml_from_kmz(path: Path, data: bytes) -> bytes:
    """The KML in a KMZ: ``doc.kml``, else the first ``.kml`` at its root, else anywhere."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
            kmls = [n for n in names if n.lower().endswith(".kml")]
            at_root = [n for n in kmls if "/" not in n]
            if not kmls:
                raise TrackError(
                    path, f"is a zip without a .kml inside (it holds {len(names)} files)"
                )
            name = "doc.kml" if "doc.kml" in at_root else (at_root or kmls)[0]
            if archive.getinfo(name).file_size > MAX_TRACK_BYTES:
                raise TrackError(path, f"holds {name} of more than {MAX_TRACK_BYTES >> 30} GiB")
            with archive.open(name) as member:
                kml = member.read(MAX_TRACK_BYTES + 1)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        RuntimeError,
        NotImplementedError,
        ValueError,
    ) as exc:  # a corrupt directory makes zipfile seek before the start
        raise TrackError(path, f"is a broken or unsupported zip (KMZ): {exc}") from exc
    except OSError as exc:
        raise TrackError(path, f"cannot be read as a KMZ: {exc}") from exc
    if len(kml) > MAX_TRACK_BYTES:
        raise TrackError(path, f"holds {name} of more than {MAX_TRACK_BYTES >> 30} GiB")
    return kml
