"""GeoJSON and CSV track files.

* GeoJSON: LineString/MultiLineString features with per-point ``coordTimes`` or ``times``
  (ISO 8601 text, or Unix seconds; numbers above 1e11 are milliseconds), and Point features with
  a ``time``/``timestamp``/``datetime`` property, which form one segment.
* CSV: a header with time (or date and time), lat, lon and optionally elevation columns; the
  delimiter (comma, semicolon, tab) is the one the first line holds most of. A bad row is a
  :class:`~locdiff_core.photo.tracks.TrackError` naming its line: there it more likely means a
  wrong column than one bad fix.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from locdiff_core.photo.track_fixes import Fixes, plain_text, time_value
from locdiff_core.photo.tracks import Track, TrackError

_TIME_COLUMNS = ("time", "timestamp", "datetime", "date_time", "utc")

_LAT_COLUMNS = ("lat", "latitude")

_LON_COLUMNS = ("lon", "lng", "long", "longitude")

_ELE_COLUMNS = ("ele", "elevation", "alt", "altitude")

_POINT_TIME_KEYS = ("time", "timestamp", "datetime")


def read_geojson(path: Path, data: bytes) -> Track:
    try:
        doc = json.loads(plain_text(data))
    except json.JSONDecodeError as exc:
        raise TrackError(path, f"is not valid JSON ({exc.msg})", exc.lineno) from exc
    except RecursionError:
        raise TrackError(path, "is JSON nested too deeply to be GeoJSON") from None
    fixes = Fixes(path)
    kinds: Counter[str] = Counter()
    points: list[tuple[float, float, float, float]] = []
    features = _features(path, doc)
    for index, feature in enumerate(features):
        where = f"features[{index}]"
        if not isinstance(feature, dict):
            raise TrackError(path, f"{where} is not a GeoJSON Feature object")
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        kinds[str(kind)] += 1
        coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if kind == "Point":
            key = next((k for k in _POINT_TIME_KEYS if k in props), None)
            if key is None:
                fixes.count("Point feature", "without a time left out")
            else:
                points.extend(_json_rows(path, fixes, [coordinates], [props[key]], where))
        elif kind in ("LineString", "MultiLineString"):
            lines = [coordinates] if kind == "LineString" else coordinates
            if not isinstance(lines, list) or not all(isinstance(c, list) for c in lines):
                raise TrackError(path, f"{where}: {kind} coordinates are not lists")
            times = props.get("coordTimes", props.get("times"))
            if times is None:
                fixes.count("line", "without times left out")
                continue
            name = str(props.get("name") or "")
            for coords, line_times in zip(
                lines, _line_times(path, lines, times, where), strict=True
            ):
                fixes.add(_json_rows(path, fixes, coords, line_times, where), name)
    fixes.add(points, "points")
    listed = ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "none"
    name = doc.get("name") if isinstance(doc.get("name"), str) else ""
    return fixes.track(name, f"{len(features)} features ({listed})")


def _features(path: Path, doc: object) -> list:
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection" and isinstance(doc.get("features"), list):
        return doc["features"]
    if kind == "Feature":
        return [doc]
    if kind in ("Point", "LineString", "MultiLineString"):
        return [{"type": "Feature", "geometry": doc, "properties": {}}]
    raise TrackError(path, f"is JSON but not GeoJSON with features (its type is {kind!r})")


def _line_times(path: Path, lines: list, times: object, where: str) -> list[list]:
    """One list of times per line; a flat list spanning all the lines is split among them."""
    if not isinstance(times, list):
        raise TrackError(path, f"{where}: its times are not a list")
    if len(lines) != 1 or (times and isinstance(times[0], list)):
        if all(isinstance(t, list) for t in times) and len(times) == len(lines):
            per_line = times
        elif sum(map(len, lines)) == len(times) and not any(isinstance(t, list) for t in times):
            bounds = np.cumsum([0, *map(len, lines)])
            per_line = [times[a:b] for a, b in itertools.pairwise(bounds)]
        else:
            raise TrackError(path, f"{where}: {len(lines)} lines but {len(times)} lists of times")
    else:
        per_line = [times]
    for coords, line_times in zip(lines, per_line, strict=True):
        if len(coords) != len(line_times):
            problem = f"{where}: {len(coords)} coordinates but {len(line_times)} times"
            raise TrackError(path, problem)
    return per_line


def _json_rows(path: Path, fixes: Fixes, coords: list, times: list, where: str) -> list:
    rows = []
    for position, when in zip(coords, times, strict=True):
        valid = isinstance(position, list) and len(position) >= 2
        if not (valid and all(isinstance(v, int | float) for v in position[:3])):
            raise TrackError(path, f"{where}: coordinate {position!r} is not [lon, lat, (ele)]")
        if any(isinstance(v, bool) for v in position[:3]):
            raise TrackError(path, f"{where}: coordinate {position!r} is not [lon, lat, (ele)]")
        seconds = fixes.seconds(when)
        if seconds is not None:
            ele = float(position[2]) if len(position) > 2 else math.nan
            rows.append((seconds, float(position[1]), float(position[0]), ele))
    return rows


def read_csv(path: Path, data: bytes) -> Track:
    text = plain_text(data)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = _records(path, reader)
    header: list[str] = []
    for row in records:
        if any(cell.strip() for cell in row):
            header = [cell.strip().strip('"').lower() for cell in row]
            break
    columns = _csv_columns(path, header)
    fixes = Fixes(path)
    rows = []
    naive = 0
    for row in records:
        if not any(cell.strip() for cell in row):
            continue
        seconds, lat, lon, ele, was_naive = _csv_row(path, row, columns, reader.line_num, delimiter)
        rows.append((seconds, lat, lon, ele))
        naive += was_naive
    fixes.count("time", "without a time zone read as UTC", naive)
    fixes.add(rows)
    return fixes.track("", "a header but no rows" if not rows else f"{len(rows)} rows")


def _records(path: Path, reader) -> Iterator[list[str]]:
    """The reader's rows; a row csv cannot split (a field over its size limit, a NUL character)
    is a :class:`TrackError` at its line."""
    try:
        yield from reader
    except csv.Error as exc:
        raise TrackError(path, f"is not readable as CSV ({exc})", reader.line_num) from None


def _csv_columns(path: Path, header: list[str]) -> dict[str, int | None]:
    """Index of each column used: ``time``, ``date`` (None unless date and time are apart),
    ``lat``, ``lon`` and ``ele`` (None where absent)."""

    def find(names: tuple[str, ...]) -> int | None:
        return next((header.index(n) for n in names if n in header), None)

    split = "date" in header and "time" in header
    columns = {
        "time": header.index("time") if split else find(_TIME_COLUMNS),
        "date": header.index("date") if split else None,
        "lat": find(_LAT_COLUMNS),
        "lon": find(_LON_COLUMNS),
        "ele": find(_ELE_COLUMNS),
    }
    missing = [k for k in ("time", "lat", "lon") if columns[k] is None]
    if missing:
        found = ", ".join(repr(h) for h in header) or "none"
        raise TrackError(
            path,
            f"has no {' or '.join(missing)} column; it needs a time column ("
            f"{', '.join(_TIME_COLUMNS)}, or date and time), lat ({', '.join(_LAT_COLUMNS)}) and "
            f"lon ({', '.join(_LON_COLUMNS)}); the header's columns are: {found}",
            1,
        )
    return columns


def _csv_row(path: Path, row: list[str], columns: dict, line: int, delimiter: str) -> tuple:
    """``(seconds, lat, lon, ele, had no zone)`` of one row; :class:`TrackError` at its line."""
    need = max(i for i in columns.values() if i is not None)
    if len(row) <= need:
        raise TrackError(path, f"has {len(row)} fields; the header's columns need {need + 1}", line)
    value = row[columns["time"]].strip()
    if columns["date"] is not None:
        value = f"{row[columns['date']].strip()} {value}"
    try:
        seconds, naive = time_value(value)
    except ValueError as exc:
        raise TrackError(path, f"time {_shown(value)} is not usable: {exc}", line) from None

    def number(key: str, limit: float) -> float:
        text = row[columns[key]].strip()
        try:
            x = float(text if delimiter == "," else text.replace(",", "."))
        except ValueError:
            raise TrackError(path, f"{key} {_shown(text)} is not a number", line) from None
        if not (math.isfinite(x) and abs(x) <= limit):
            raise TrackError(path, f"{key} {_shown(text)} is out of range (±{limit:g})", line)
        return x

    lat, lon = number("lat", 90.0), number("lon", 180.0)
    has_ele = columns["ele"] is not None and row[columns["ele"]].strip()
    ele = number("ele", math.inf) if has_ele else math.nan
    return seconds, lat, lon, ele, naive


def _shown(text: str, most: int = 40) -> str:
    """``text`` quoted for a message, cut to ``most`` characters."""
    return repr(text if len(text) <= most else text[: most - 1] + "…")
