"""Reading GPS track files into :class:`~locdiff_core.photo.tracks.Track`: GPX 1.0/1.1, KML, KMZ,
GeoJSON and CSV.

The format is told by the content (a zip is KMZ, ``<gpx>``/``<kml>`` roots are GPX/KML, ``{`` is
GeoJSON, delimited text with a header is CSV); the file's extension only decides what a file that
matches none of them was meant to be, for the message. What each format yields:

* GPX (via gpxpy): every ``trkseg`` and every route with times is a segment; waypoints form one
  segment only when nothing else has a time. Elevation where given.
* KML/KMZ: each ``gx:Track`` (also inside ``gx:MultiTrack``) is a segment; Point Placemarks with
  a ``TimeStamp`` form one segment; a ``LineString`` with a ``TimeSpan`` gets its vertices' times
  spread at constant speed (by great-circle distance) between begin and end.
* GeoJSON: LineString/MultiLineString features with per-point ``coordTimes`` or ``times``
  (ISO 8601 text, or Unix seconds; numbers above 1e11 are milliseconds), and Point features with
  a ``time``/``timestamp``/``datetime`` property, which form one segment.
* CSV: a header with time (or date and time), lat, lon and optionally elevation columns.

A fix without a usable time (none, a date alone, unreadable text) or with a position out of
range is left out and counted in the track's notes; in a CSV, where a bad value more likely means
a wrong column, any bad row is a :class:`TrackError` naming its line. Times without a zone are
read as UTC, and the notes say how many.
"""

from __future__ import annotations

import enum
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from locdiff_core.photo.errors import PhotoError, PhotoErrorKind, os_error
from locdiff_core.photo.safe_io import check_regular
from locdiff_core.photo.track_fixes import MAX_TRACK_BYTES, decode_text, local_name
from locdiff_core.photo.track_text import read_csv, read_geojson
from locdiff_core.photo.track_xml import kml_from_kmz, read_gpx, read_kml
from locdiff_core.photo.tracks import Track, TrackError

TRACK_SUFFIXES = (".gpx", ".kml", ".kmz", ".geojson", ".json", ".csv", ".txt")


class _Format(enum.Enum):
    GPX = "GPX"
    KML = "KML"
    KMZ = "KMZ"
    GEOJSON = "GeoJSON"
    CSV = "CSV"


_EXPECTED = {".gpx": _Format.GPX, ".kml": _Format.KML, ".kmz": _Format.KMZ}

_EXPECTED |= {".geojson": _Format.GEOJSON, ".json": _Format.GEOJSON}


def read_track(path: Path | str) -> Track:
    """The track in the GPX, KML, KMZ, GeoJSON or CSV file at ``path``.

    Raises :class:`TrackError` naming the file (and the line, where the format has lines) for a
    file that cannot be read, is not one of these formats, is broken, or has no timed fix.
    """
    path = Path(path)
    data = _read_bytes(path)
    fmt = _sniff(path, data)
    try:
        if fmt is _Format.KMZ:
            return read_kml(path, kml_from_kmz(path, data))
        return _READERS[fmt](path, data)
    except TrackError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        # a shape of file no rule above foresaw: still a message, never a traceback
        problem = f"could not be read as {fmt.value} ({type(exc).__name__}: {exc})"
        raise TrackError(path, problem) from exc


def _read_bytes(path: Path) -> bytes:
    try:
        check_regular(path, what="a track file", doing="reading it")
    except PhotoError as exc:
        raise TrackError(path, exc.message) from exc
    too_large = f"is larger than {MAX_TRACK_BYTES >> 30} GiB; split it into smaller files"
    try:
        if os.stat(path).st_size > MAX_TRACK_BYTES:
            raise TrackError(path, too_large)
        with open(path, "rb") as file:
            data = file.read(MAX_TRACK_BYTES + 1)
    except OSError as exc:
        problem = os_error(path, exc, "reading it", kind=PhotoErrorKind.UNREADABLE).message
        raise TrackError(path, problem) from exc
    if len(data) > MAX_TRACK_BYTES:
        raise TrackError(path, too_large)
    return data


def _sniff(path: Path, data: bytes) -> _Format:
    if data.startswith(b"PK\x03\x04"):
        return _Format.KMZ
    head = decode_text(data[:8192], errors="replace")
    body = head.lstrip()
    if not body:
        raise TrackError(path, "is empty" if not data else "holds only white space")
    suffix = path.suffix.lower()
    if body.startswith("<"):
        root = _xml_root(data)
        if root in ("gpx", "kml"):
            return _Format[root.upper()]
        if root is None and _EXPECTED.get(suffix) in (_Format.GPX, _Format.KML):
            return _EXPECTED[suffix]  # broken XML: its reader reports where
        what = "not well-formed XML" if root is None else f"XML with a <{root}> root"
        raise TrackError(path, f"is {what}, not GPX or KML")
    if body.startswith("{"):
        return _Format.GEOJSON
    bad = sum(1 for c in head if (c < " " and c not in "\t\n\r\f") or c == "\ufffd")
    if "\x00" in head or bad > len(head) / 20:
        raise TrackError(path, "holds binary data, not a track (GPX, KML, KMZ, GeoJSON or CSV)")
    if suffix in _EXPECTED:
        raise TrackError(path, f"is named {suffix} but does not hold {_EXPECTED[suffix].value}")
    first = body.splitlines()[0]
    if suffix in (".csv", ".txt") or any(d in first for d in ",;\t"):
        return _Format.CSV
    raise TrackError(path, "is not a track in a known format (GPX, KML, KMZ, GeoJSON or CSV)")


def _xml_root(data: bytes) -> str | None:
    """Local name of the root element, or None where the XML breaks before it."""
    parser = ET.XMLPullParser(events=("start",))
    try:
        for start in range(0, len(data), 1 << 16):
            parser.feed(data[start : start + (1 << 16)])
            for _event, element in parser.read_events():
                return local_name(element.tag)
        parser.close()
    except ET.ParseError:
        return None
    return None


_READERS = {
    _Format.GPX: read_gpx,
    _Format.KML: read_kml,
    _Format.GEOJSON: read_geojson,
    _Format.CSV: read_csv,
}
