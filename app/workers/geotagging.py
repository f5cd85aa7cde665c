"""Geotagging by time for the window: reading track files, matching the session's photos to
them, the clock offset from a photo put where it was taken, and the time-aware guesses.

Qt-free functions over the core (:mod:`locdiff_core.photo.geotag`, :mod:`locdiff_core.time_fusion`):
reading tracks and fusing run on a pool thread (:class:`app.workers.loaders.Task`); matching is
cheap (milliseconds for a thousand photos) and runs in the window's thread, so a changed
offset moves the pins at once.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.model.geotagging import (
    MAX_LINE_POINTS,
    GeotagOptions,
    ProposalSummary,
    ProposedPlace,
    TimeGuess,
    TrackLine,
    thin,
)
from app.model.photo import Photo
from locdiff_core.photo.errors import FileResult
from locdiff_core.photo.geotag import (
    PhotoClock,
    camera_zone,
    offset_from_reference,
    propose,
    time_at_place,
)
from locdiff_core.photo.gps import GpsFix
from locdiff_core.photo.photo_time import TimeSettings, format_offset, to_utc
from locdiff_core.photo.track_match import MatchConfig
from locdiff_core.photo.track_readers import read_track
from locdiff_core.photo.tracks import Track, TrackError
from locdiff_core.time_fusion import Neighbour, TimePrior, fuse

FAR_FROM_TRACK_M = 1000.0  # a reference photo put further than this from every track is refused
NEIGHBOURS_EACH_SIDE = 3  # photos before and after used to bound a time-aware guess


def read_tracks(
    paths: Sequence[Path | str],
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[tuple[Path, Track | None, str | None]]:
    """Each file as ``(path, track, None)`` or ``(path, None, message)``: a bad file is a
    message naming it and its problem (:class:`locdiff_core.photo.tracks.TrackError`)."""
    out: list[tuple[Path, Track | None, str | None]] = []
    for done, path in enumerate(paths):
        if cancelled is not None and cancelled():
            break
        try:
            out.append((Path(path), read_track(path), None))
        except TrackError as exc:
            out.append((Path(path), None, str(exc)))
        if progress is not None:
            progress(done + 1, len(paths))
    return out


def track_line(track: Track, track_id: int, colour: str) -> TrackLine:
    """What the list and the map show of ``track``."""
    share = MAX_LINE_POINTS / max(track.fixes, 1)
    lines = []
    for seg in track.segments:
        points = list(zip(seg.lat.tolist(), seg.lon.tolist(), strict=True))
        lines.append(tuple(thin(points, max(2, round(len(points) * share)))))
    elevation = any(bool(np.isfinite(seg.ele).any()) for seg in track.segments)
    return TrackLine(
        track_id,
        track.label,
        str(track.path),
        track.start,
        track.end,
        track.fixes,
        elevation,
        tuple(lines),
        colour,
        notes=track.notes,
    )


def _clock(photo: Photo) -> PhotoClock:
    fix = None if photo.exif is None else GpsFix(*photo.exif, photo.exif_alt)
    return PhotoClock(photo.capture, fix)


def _clocks(photos: Sequence[Photo]) -> list[FileResult[PhotoClock]]:
    return [FileResult(p.path, _clock(p)) for p in photos]


def time_settings(
    photos: Sequence[Photo], tracks: Sequence[Track], options: GeotagOptions
) -> tuple[TimeSettings, str]:
    """The camera's zone and offset, and how the zone was chosen (given, or guessed from the
    tracks' first fix or a photo with GPS)."""
    zone, how = camera_zone(tracks, options.zone or None, _clocks(photos))
    return TimeSettings(zone=zone, offset=options.offset), how


def propose_places(
    photos: Sequence[Photo], tracks: Sequence[Track], options: GeotagOptions
) -> tuple[dict[str, ProposedPlace | None], dict[str, str | None], ProposalSummary]:
    """Where ``tracks`` (and, with ``options.use_neighbours``, the photos with GPS) put each
    usable photo without a position or a confirmed place, and why the others are left alone."""
    usable = [p for p in photos if not p.load_error and p.exif_read]
    settings, how = time_settings(usable, tracks, options)
    summary = ProposalSummary(zone=settings.zone, zone_source=how)
    places: dict[str, ProposedPlace | None] = {}
    notes: dict[str, str | None] = {}
    if not tracks and not options.use_neighbours:
        return places, notes, summary
    config = MatchConfig(options.max_gap_s, options.interpolate_s)
    results = propose(
        _clocks(usable), tracks, settings, config, use_neighbours=options.use_neighbours
    )
    for photo, result in zip(usable, results, strict=True):
        if photo.exif is not None or photo.confirmed is not None:
            continue
        proposal = result.value
        m = proposal.match
        if m.placed:
            when = proposal.utc.how if proposal.utc else ""
            places[photo.key] = ProposedPlace(m.lat, m.lon, m.ele, m.why, when)
            summary.placed += 1
        else:
            notes[photo.key] = m.why
            head = m.why.split(":")[0]
            summary.left_alone[head] = summary.left_alone.get(head, 0) + 1
    return places, notes, summary


def offset_from_photo(
    photo: Photo,
    lat: float,
    lon: float,
    tracks: Sequence[Track],
    settings: TimeSettings,
) -> tuple[dt.timedelta, str]:
    """The camera clock's offset that puts ``photo`` at ``(lat, lon)`` on ``tracks``, and a
    sentence saying how. ``ValueError`` (with what to do) when the photo has no capture time,
    there is no track, or the tracks pass nowhere near the place."""
    if photo.capture is None:
        raise ValueError(f"{photo.name} has no capture time: pick a photo that has one")
    if not tracks:
        raise ValueError("open a GPS track first: the offset is read from where it passes")
    near = to_utc(photo.capture, settings).seconds
    utc, metres, label = time_at_place(tracks, lat, lon, near_utc=near)
    if metres > FAR_FROM_TRACK_M:
        raise ValueError(
            f"no track passes near there (the nearest, {label}, is {metres / 1000:.1f} km "
            f"away): put {photo.name} where the track went"
        )
    offset = offset_from_reference(photo.capture, settings.zone, utc)
    when = dt.datetime.fromtimestamp(utc, dt.UTC)
    return offset, (
        f"clock offset {format_offset(offset)} from {photo.name}: {label} passed there at "
        f"{when:%H:%M:%S} UTC ({metres:.0f} m from the place)"
    )


@dataclass(frozen=True)
class FusionJob:
    """One photo to bound by its neighbours: its prediction's density and the neighbours."""

    key: str
    density: np.ndarray  # (H, W) per steradian, the display grid
    neighbours: tuple[Neighbour, ...]


def fusion_jobs(
    photos: Sequence[Photo], settings: TimeSettings, window_s: float
) -> tuple[list[FusionJob], list[str]]:
    """The predicted photos that have placed neighbours within ``window_s`` (up to
    :data:`NEIGHBOURS_EACH_SIDE` before and after), and the keys of the other predicted ones.

    A neighbour is a photo with EXIF GPS (a phone's: its time is not shifted by the camera's
    offset), or a confirmed or track-proposed place (the camera's clock)."""
    phone = TimeSettings(zone=settings.zone)
    known: list[tuple[float, Neighbour]] = []
    for p in photos:
        if p.capture is None or p.load_error:
            continue
        if p.exif is not None:
            place, clock = p.exif, phone
        elif p.confirmed is not None or p.proposed is not None:
            place, clock = p.confirmed or p.proposed.point, settings
        else:
            continue
        known.append((to_utc(p.capture, clock).seconds, Neighbour(*place, 0.0, p.name)))
    known.sort(key=lambda kn: kn[0])
    stamps = [t for t, _ in known]
    jobs, none = [], []
    for p in photos:
        pred = p.prediction
        if pred is None or pred.density is None:
            continue
        if p.capture is None or p.exif is not None or p.confirmed or p.proposed:
            none.append(p.key)
            continue
        t = to_utc(p.capture, settings).seconds
        at = bisect.bisect_left(stamps, t)
        chosen = known[max(0, at - NEIGHBOURS_EACH_SIDE) : at + NEIGHBOURS_EACH_SIDE]
        near = tuple(
            Neighbour(n.lat, n.lon, when - t, n.label)
            for when, n in chosen
            if abs(when - t) <= window_s
        )
        if near:
            jobs.append(FusionJob(p.key, pred.density, near))
        else:
            none.append(p.key)
    return jobs, none


def time_guesses(
    jobs: Sequence[FusionJob], prior: TimePrior, cancelled: Callable[[], bool] | None = None
) -> dict[str, TimeGuess | None]:
    """The time-aware guess of each job (:func:`locdiff_core.time_fusion.fuse`)."""
    out: dict[str, TimeGuess | None] = {}
    for job in jobs:
        if cancelled is not None and cancelled():
            break
        fused = fuse(job.density, job.neighbours, prior)
        out[job.key] = (
            None
            if fused is None
            else TimeGuess(
                fused.best,
                fused.radius50_km,
                fused.radius90_km,
                fused.why,
                fused.model_share,
                len(fused.used),
            )
        )
    return out
