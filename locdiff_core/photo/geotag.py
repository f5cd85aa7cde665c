"""Geotagging by time: the photos' capture times, made UTC with the camera's zone and clock
offset, matched against GPS tracks and against the photos that already have a position.

The steps are separate so that a window can redo the cheap ones live: :func:`read_times`
reads the files once; :func:`propose` turns times into proposed positions for any zone and
offset in milliseconds (changing the offset moves the pins before anything is written); the
write goes through :func:`locdiff_core.photo.writing.write_gps_each` (verified, atomic, with
backups and one undo).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from locdiff_core.earth import EARTH_RADIUS_KM
from locdiff_core.photo.errors import CancelledFn, FileResult, ProgressFn, run_batch
from locdiff_core.photo.gps import GpsFix, read_gps
from locdiff_core.photo.photo_time import (
    CaptureTime,
    TimeSettings,
    UtcTime,
    guess_zone,
    read_capture_time,
    to_utc,
)
from locdiff_core.photo.track_match import Match, MatchConfig, match_times
from locdiff_core.photo.tracks import Segment, Track

NEIGHBOURS = "photos with GPS"  # the label of the track the geotagged photos make


@dataclass(frozen=True)
class PhotoClock:
    """What a photo file says about where and when: its capture time and its own position."""

    capture: CaptureTime | None
    fix: GpsFix | None


def _read_clock(path: Path) -> PhotoClock:
    return PhotoClock(read_capture_time(path), read_gps(path))


def read_times(
    paths: Iterable[Path | str],
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[FileResult[PhotoClock]]:
    """Each photo's capture time and position; a file that cannot be read is an error result."""
    return run_batch(paths, _read_clock, progress=progress, cancelled=cancelled)


def camera_zone(
    tracks: Sequence[Track],
    given: str | None = None,
    clocks: Sequence[FileResult[PhotoClock]] = (),
) -> tuple[str, str]:
    """The zone to read the camera's wall-clock times in, and how it was chosen: ``given``,
    else the zone at the earliest fix of ``tracks`` (offline lookup), else at the position of
    the first photo among ``clocks`` that has one, else UTC."""
    if given:
        return given, "given"
    if tracks:
        first = min(tracks, key=lambda t: t.start)
        found = guess_zone(*first.first_fix())
        if found:
            return found, f"from {first.label}'s first fix"
    for r in clocks:
        if r.ok and r.value.fix is not None:
            found = guess_zone(r.value.fix.lat, r.value.fix.lon)
            if found:
                return found, f"from the position of {r.path.name}"
    return "UTC", "no zone given and nothing to guess it from"


def neighbour_track(
    clocks: Sequence[FileResult[PhotoClock]], settings: TimeSettings
) -> Track | None:
    """The photos that have both a position and a time, as a track (``None``: there are none).
    They are taken to be a phone's, whose clock is set by the network: their times keep the
    offset they carry, or are read in the settings' zone, but the camera's clock offset is not
    applied to them."""
    phone = TimeSettings(zone=settings.zone)
    times, lat, lon, ele = [], [], [], []
    for r in clocks:
        if not r.ok or r.value.capture is None or r.value.fix is None:
            continue
        times.append(to_utc(r.value.capture, phone).seconds)
        lat.append(r.value.fix.lat)
        lon.append(r.value.fix.lon)
        ele.append(np.nan if r.value.fix.alt is None else r.value.fix.alt)
    if not times:
        return None
    segment = Segment.from_fixes(times, lat, lon, ele, name=NEIGHBOURS)
    return Track(Path(NEIGHBOURS), (segment,), name=NEIGHBOURS)


@dataclass(frozen=True)
class Proposal:
    """Where the tracks put one photo: ``match`` (placed or why not), and the times used."""

    clock: PhotoClock
    utc: UtcTime | None
    match: Match

    @property
    def placed(self) -> bool:
        return self.match.placed


def propose(
    clocks: Sequence[FileResult[PhotoClock]],
    tracks: Sequence[Track],
    settings: TimeSettings,
    config: MatchConfig | None = None,
    *,
    use_neighbours: bool = True,
) -> list[FileResult[Proposal]]:
    """A proposal for every photo without a position (photos with one keep it: their proposal
    says so); errors pass through. ``config``: the matching rules (default
    :class:`MatchConfig`). With ``use_neighbours`` the photos that have a position act
    as one more track."""
    all_tracks = list(tracks)
    if use_neighbours:
        extra = neighbour_track(clocks, settings)
        if extra is not None:
            all_tracks.append(extra)
    utcs: list[UtcTime | None] = []
    for r in clocks:
        wanted = r.ok and r.value.fix is None and r.value.capture is not None
        utcs.append(to_utc(r.value.capture, settings) if wanted else None)
    stamps = [u.seconds if u is not None else np.nan for u in utcs]
    matches = match_times(stamps, all_tracks, config or MatchConfig())
    out: list[FileResult[Proposal]] = []
    for r, utc, m in zip(clocks, utcs, matches, strict=True):
        if not r.ok:
            out.append(FileResult(r.path, error=r.error))
            continue
        if r.value.fix is not None:
            m = Match(None, None, None, None, None, "already has a position (kept)")
        out.append(FileResult(r.path, Proposal(r.value, utc, m), warning=utc.note if utc else None))
    return out


def offset_from_reference(capture: CaptureTime, zone_name: str, true_utc: float) -> dt.timedelta:
    """The clock offset that makes ``capture`` (read in ``zone_name``) happen at ``true_utc``:
    what *Set offset from a photo* computes once the user has said where the photo was taken."""
    camera = to_utc(capture, TimeSettings(zone=zone_name)).seconds
    return dt.timedelta(seconds=round(true_utc - camera, 3))


def time_at_place(
    tracks: Sequence[Track],
    lat: float,
    lon: float,
    near_utc: float | None = None,
    tolerance_m: float = 50.0,
) -> tuple[float, float, str]:
    """When the tracks passed a place: ``(utc, metres from the place, track label)`` at the
    point of the track nearest the place, between fixes (the time interpolated along the line
    joining them); where a track passes the place more than once (passes within
    ``tolerance_m`` of the nearest), the pass closest in time to ``near_utc``. ``ValueError``
    without fixes."""
    passes: list[tuple[float, float, str]] = []  # (metres, utc, label)
    for track in tracks:
        for seg in track.segments:
            metres, utc = _nearest_on_segment(seg, lat, lon)
            passes.extend(
                (float(m), float(t), track.label) for m, t in zip(metres, utc, strict=True)
            )
    if not passes:
        raise ValueError("no track fixes to take a time from; open a track first")
    nearest = min(p[0] for p in passes)
    close = [p for p in passes if p[0] <= nearest + tolerance_m]
    metres, utc, label = min(
        close, key=lambda p: (abs(p[1] - near_utc) if near_utc is not None else 0.0, p[0])
    )
    return utc, metres, label


def _nearest_on_segment(seg: Segment, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]:
    """For every piece of line between two fixes of ``seg`` (or its one fix): the distance in
    metres from the place to the piece's nearest point, and the time there. Local plane
    around the place (metres east and north): exact enough for pieces near it, which are the
    only ones that can win."""
    if len(seg) == 1:
        return _metres(lat, lon, seg.lat, seg.lon), seg.times.copy()
    r = 1000.0 * EARTH_RADIUS_KM
    east = np.radians((seg.lon - lon + 180.0) % 360.0 - 180.0) * r * np.cos(np.radians(lat))
    north = np.radians(seg.lat - lat) * r
    x0, y0, dx, dy = east[:-1], north[:-1], np.diff(east), np.diff(north)
    length2 = dx * dx + dy * dy
    f = np.divide(-(x0 * dx + y0 * dy), length2, out=np.zeros_like(dx), where=length2 > 0)
    f = np.clip(f, 0.0, 1.0)
    metres = np.hypot(x0 + f * dx, y0 + f * dy)
    return metres, seg.times[:-1] + f * np.diff(seg.times)


def _metres(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat), np.radians(lats)
    dphi, dlmb = p2 - p1, np.radians(lons - lon)
    h = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2000.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
