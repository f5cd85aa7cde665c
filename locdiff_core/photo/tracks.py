"""GPS tracks: timed fixes read from GPX, KML/KMZ, GeoJSON and CSV files.

A :class:`Track` is one file: its segments, each a run of fixes in time order (a GPX ``trkseg``
or route, a KML ``gx:Track``, a GeoJSON line, a CSV file). Times are seconds since the Unix
epoch in UTC (float64: microseconds survive); a file's time without a zone is read as UTC, as
GPX and KML define it, and the track says so in its ``notes``. Positions are degrees in the
``(lat, lon)`` order of :mod:`locdiff_core.geo`; elevation is metres, NaN where unknown.

:func:`locdiff_core.photo.track_readers.read_track` raises :class:`TrackError` naming the
file (and the line, where the format has lines) for anything it cannot use; a fix without a
time or with a position out of range is dropped and counted in the notes, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class TrackError(ValueError):
    """A track file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, eq=False)
class Segment:
    """Fixes in time order: ``times`` (UTC seconds), ``lat``, ``lon``, ``ele`` (NaN: unknown)."""

    times: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    ele: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        n = len(self.times)
        if not (len(self.lat) == len(self.lon) == len(self.ele) == n):
            raise ValueError("a segment's times, lat, lon and ele must have one value per fix")
        if n > 1 and not bool(np.all(np.diff(self.times) >= 0)):
            raise ValueError("a segment's fixes must be in time order")

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def from_fixes(
        cls,
        times: np.ndarray | list[float],
        lat: np.ndarray | list[float],
        lon: np.ndarray | list[float],
        ele: np.ndarray | list[float] | None = None,
        name: str = "",
    ) -> Segment:
        """A segment of these fixes, sorted by time (stable: equal times keep their order)."""
        t = np.asarray(times, dtype=np.float64)
        e = np.full(len(t), np.nan) if ele is None else np.asarray(ele, dtype=np.float64)
        order = np.argsort(t, kind="stable")
        return cls(
            t[order],
            np.asarray(lat, dtype=np.float64)[order],
            np.asarray(lon, dtype=np.float64)[order],
            e[order],
            name,
        )


@dataclass(frozen=True, eq=False)
class Track:
    """One track file: its segments (none empty), a display name, and what reading it noted."""

    path: Path
    segments: tuple[Segment, ...]
    name: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return self.name or self.path.name

    @property
    def fixes(self) -> int:
        return sum(len(s) for s in self.segments)

    @property
    def start(self) -> float:
        return min(float(s.times[0]) for s in self.segments)

    @property
    def end(self) -> float:
        return max(float(s.times[-1]) for s in self.segments)

    def first_fix(self) -> tuple[float, float]:
        """``(lat, lon)`` of the earliest fix."""
        seg = min(self.segments, key=lambda s: float(s.times[0]))
        return float(seg.lat[0]), float(seg.lon[0])
