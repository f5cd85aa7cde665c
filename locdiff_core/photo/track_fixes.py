"""The parts every track-file reader shares: collecting fixes into segments with counts of
what was left out (:class:`Fixes`), reading one fix's time, decoding text, and XML helpers.
Used by :mod:`locdiff_core.photo.track_xml` and :mod:`locdiff_core.photo.track_text`."""

from __future__ import annotations

import codecs
import datetime as dt
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from locdiff_core.photo.tracks import Segment, Track, TrackError

MAX_TRACK_BYTES = 1 << 30  # a larger file (or KMZ member) is refused before it is read

_MS_ABOVE = 1e11  # a Unix time above this is in milliseconds (1e11 s is the year 5138)

_EPOCH_RANGE = (-62135596800.0, 253402300799.0)  # 0001-01-01 .. 9999-12-31T23:59:59, UTC

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

_HAS_TIME_OF_DAY = re.compile(r"\d[T ]\d")

_XML_ENCODING = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")


class Fixes:
    """What one file yields while it is read: its segments, and counts of what was left out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.segments: list[Segment] = []
        self.notes: list[str] = []
        self._counts: Counter[tuple[str, str]] = Counter()  # (noun, rest of the note) -> count

    def count(self, noun: str, rest: str, n: int = 1) -> None:
        if n:
            self._counts[(noun, rest)] += n

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def seconds(self, value: object) -> float | None:
        """UTC seconds of one fix's time; None, counted, where it has no usable time."""
        if value is None or (isinstance(value, str) and not value.strip()):
            self.count("fix", "without a time left out")
            return None
        try:
            seconds, naive = time_value(value)
        except ValueError as exc:
            self.count("fix", f"with {exc} left out")
            return None
        self.count("time", "without a time zone read as UTC", int(naive))
        return seconds

    def add(self, rows: list[tuple[float, float, float, float]], name: str = "") -> None:
        """A segment of ``(time, lat, lon, ele)`` rows, out-of-range positions left out."""
        if not rows:
            return
        t, lat, lon, ele = np.array(rows, dtype=np.float64).T
        ok = np.isfinite(t) & np.isfinite(lat) & np.isfinite(lon)
        ok &= (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        self.count("fix", "with a position out of range left out", int(np.sum(~ok)))
        if ok.any():
            ele = np.where(np.isfinite(ele), ele, np.nan)
            self.segments.append(Segment.from_fixes(t[ok], lat[ok], lon[ok], ele[ok], name))

    def track(self, name: str, found: str) -> Track:
        """The track read; :class:`TrackError` saying what was ``found`` if no fix was usable."""
        counted = [f"{n} {_plural(noun, n)} {rest}" for (noun, rest), n in self._counts.items()]
        notes = [*self.notes, *counted]
        if not self.segments:
            raise TrackError(self.path, "; ".join([f"no timed fixes: {found}", *notes]))
        return Track(self.path, tuple(self.segments), name.strip() or self.path.stem, tuple(notes))


def _plural(noun: str, n: int) -> str:
    if n == 1:
        return noun
    return "fixes" if noun == "fix" else f"{noun}s"


def time_value(value: object) -> tuple[float, bool]:
    """``(UTC seconds, had no zone)`` of a datetime, ISO 8601 text or Unix time; ValueError
    names what is wrong with it ("a date but no time of day", "an unreadable time")."""
    if isinstance(value, dt.datetime):
        naive = value.utcoffset() is None
        when = value.replace(tzinfo=dt.UTC) if naive else value
        return _checked(when.timestamp()), naive
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch(float(value)), False
    if not isinstance(value, str):
        raise ValueError("an unreadable time")
    text = value.strip().upper()
    if _NUMBER.fullmatch(text):
        return _epoch(float(text)), False
    if not _HAS_TIME_OF_DAY.search(text):
        dated = re.match(r"\d{4}-\d{2}", text)
        raise ValueError("a date but no time of day" if dated else "an unreadable time")
    try:
        when = dt.datetime.fromisoformat(text)
        return time_value(when)
    except (ValueError, OverflowError):
        raise ValueError("an unreadable time") from None


def _epoch(seconds: float) -> float:
    return _checked(seconds / 1000.0 if seconds > _MS_ABOVE else seconds)


def _checked(seconds: float) -> float:
    if not (math.isfinite(seconds) and _EPOCH_RANGE[0] <= seconds <= _EPOCH_RANGE[1]):
        raise ValueError("a time out of range")
    return seconds


def decode_text(data: bytes, errors: str = "strict") -> str:
    """Text of ``data``: UTF-8 or UTF-16 by their byte-order mark, else UTF-8."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors=errors)
    return data.decode("utf-8-sig", errors=errors)


def plain_text(data: bytes) -> str:
    try:
        return decode_text(data)
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # a spreadsheet's export


def local_name(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def xml_error(path: Path, exc: Exception) -> TrackError:
    """A parser's syntax error as a :class:`TrackError` at its line."""
    cause = exc.__cause__ or exc
    position = getattr(cause, "position", None)
    found = re.search(r"line (\d+)", str(exc))
    line = position[0] if position else int(found.group(1)) if found else None
    problem = re.sub(r":? line \d+, column (\d+)", r" at column \1", str(cause)).strip()
    return TrackError(path, f"is not well-formed XML ({problem})", line)


def xml_text(path: Path, data: bytes) -> str:
    """``data`` decoded as its XML declaration (or byte-order mark) says."""
    found = _XML_ENCODING.match(data.lstrip(codecs.BOM_UTF8))
    encoding = found.group(1).decode("ascii") if found else "utf-8"
    try:
        if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return decode_text(data)
        return data.decode(encoding)
    except LookupError:
        raise TrackError(path, f"declares an unknown text encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TrackError(path, f"is not valid {encoding} text", line) from None
