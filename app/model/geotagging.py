"""Geotagging by time, as the window keeps it: the open tracks, the camera's clock (zone and
offset), the matching rules, and what they propose for each photo.

Qt-free and torch-free. The work itself (reading tracks, matching, fusing time with the model)
is in :mod:`app.workers.geotagging`; the session keeps each photo's :class:`ProposedPlace` and
:class:`TimeGuess`, and :mod:`app.track_geotag` ties the tracks panel, the map and the session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from app.model.coordinates import LatLon

TRACK_SUFFIXES = frozenset({".gpx", ".kml", ".kmz", ".geojson", ".csv"})
TRACK_FILTER = "GPS tracks (*.gpx *.kml *.kmz *.geojson *.json *.csv);;All files (*)"
MAX_LINE_POINTS = 4000  # per track drawn on the map; matching always uses every fix
TRACK_COLOURS = ("#d6336c", "#1971c2", "#2f9e44", "#f08c00", "#7048e8", "#0c8599", "#e8590c")


def is_track_file(name: str) -> bool:
    """Whether a dropped file is taken for a track (by its suffix)."""
    return Path(name).suffix.lower() in TRACK_SUFFIXES


@dataclass(frozen=True)
class ProposedPlace:
    """Where the tracks put a photo, before the user accepts it: ``alt`` in metres (``None``:
    the track has no elevation there), ``source`` says from where ("track: trip.gpx, 12 s from
    a fix"), ``time`` how its time was read (zone, offset)."""

    lat: float
    lon: float
    alt: float | None
    source: str
    time: str = ""

    @property
    def point(self) -> LatLon:
        return self.lat, self.lon


@dataclass(frozen=True)
class TimeGuess:
    """The model's density bounded by the photos taken shortly before and after
    (:func:`locdiff_core.time_fusion.fuse`): the time-aware best guess, its radii, and why it
    lies there. ``model_share``: the model's own mass inside the bound (low: they disagree)."""

    best: LatLon
    radius50_km: float
    radius90_km: float
    why: str
    model_share: float
    neighbours: int


@dataclass(frozen=True)
class TrackLine:
    """An open track as the list and the map show it. ``lines``: per segment, its points
    thinned to at most :data:`MAX_LINE_POINTS` for the whole track."""

    track_id: int
    label: str
    path: str
    start: float  # UTC seconds
    end: float
    fixes: int
    has_elevation: bool
    lines: tuple[tuple[LatLon, ...], ...]
    colour: str
    visible: bool = True
    notes: tuple[str, ...] = ()

    def time_range(self) -> str:
        """``2026-05-01 09:12 to 14:55 UTC`` (the end's date shown when it differs)."""
        start = dt.datetime.fromtimestamp(self.start, dt.UTC)
        end = dt.datetime.fromtimestamp(self.end, dt.UTC)
        tail = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
        return f"{start:%Y-%m-%d %H:%M} to {tail} UTC"

    def summary(self) -> str:
        return f"{self.label}: {self.time_range()}, {self.fixes:,} fixes"


@dataclass(frozen=True)
class GeotagOptions:
    """The user's settings for geotagging by time. ``zone``: the camera's IANA zone, ``""``
    for the one guessed from the tracks; ``offset``: the camera clock's error (added to its
    times); ``max_gap_s``/``interpolate_s``: the matching rules
    (:class:`locdiff_core.photo.track_match.MatchConfig`); ``use_neighbours``: photos with
    GPS act as a track; ``max_speed_kmh``: the fastest the photographer travels, for the
    time-aware guesses."""

    zone: str = ""
    offset: dt.timedelta = field(default=dt.timedelta(0))
    max_gap_s: float = 60.0
    interpolate_s: float = 300.0
    use_neighbours: bool = True
    max_speed_kmh: float = 120.0


@dataclass
class ProposalSummary:
    """What the last matching did, for the tracks panel: counts and the zone used."""

    placed: int = 0
    left_alone: dict[str, int] = field(default_factory=dict)  # reason -> photos
    zone: str = "UTC"
    zone_source: str = ""

    def text(self) -> str:
        if not self.placed and not self.left_alone:
            return "no photo without a position to match"
        parts = [f"{self.placed} photo{'s' * (self.placed != 1)} placed from tracks"]
        for reason, count in sorted(self.left_alone.items(), key=lambda kv: -kv[1]):
            parts.append(f"{count} left alone: {reason}")
        return "; ".join(parts)


def thin(points: list[LatLon], limit: int) -> list[LatLon]:
    """At most ``limit`` of ``points`` (``limit >= 2``), evenly spaced, first and last kept."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]
