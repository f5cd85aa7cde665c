"""What an export writes: the records of the photos that have a location, in the session's
order, and the plan the window hands to a background task (CSV, GeoJSON, GPX through
:mod:`locdiff_core.photo.export`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.model.photo import Photo
from app.model.session import Session
from locdiff_core.engines import Engine
from locdiff_core.photo.export import Candidate, PhotoRecord, write_csv, write_geojson, write_gpx
from locdiff_core.photo.photo_time import TimeSettings, guess_zone, to_utc


def export_records(session: Session, keys: Iterable[str]) -> list[PhotoRecord]:
    """Export records of the photos among ``keys`` that have a location (confirmed, EXIF or
    predicted), in list order, each named by the session's place for its location."""
    wanted = set(keys)
    out = []
    for photo in session.photos:
        if photo.key not in wanted or photo.load_error:
            continue
        pred = photo.prediction
        if pred is None and photo.exif is None and photo.confirmed is None:
            continue  # nothing to export (PhotoRecord would refuse it)
        fields = {}
        if pred is not None:
            fields = dict(
                best_lat=pred.best[0],
                best_lon=pred.best[1],
                centre_lat=pred.centre[0],
                centre_lon=pred.centre[1],
                radii_km=((0.5, pred.radius50_km), (0.9, pred.radius90_km)),
                candidates=tuple(Candidate(*c) for c in pred.candidates),
                engine=Engine(pred.engine).value,
            )
        exif, confirmed = photo.exif or (None, None), photo.confirmed or (None, None)
        record = PhotoRecord(
            path=photo.path,
            alt_m=photo.confirmed_alt if photo.confirmed is not None else photo.exif_alt,
            exif_lat=exif[0],
            exif_lon=exif[1],
            confirmed_lat=confirmed[0],
            confirmed_lon=confirmed[1],
            **fields,
        )
        lat, lon, _source = record.location  # the order of trust is the record's
        place = session.place_at(lat, lon) or ""
        out.append(dataclasses.replace(record, place=place, taken_utc=taken_utc(photo, lat, lon)))
    return out


def taken_utc(photo: Photo, lat: float, lon: float) -> str | None:
    """When the photo was taken, ISO 8601 UTC: by the offset in the file, else read in the time
    zone of where it was taken (looked up offline); None without a capture time."""
    if photo.capture is None:
        return None
    zone = "UTC" if photo.capture.utc_offset is not None else guess_zone(lat, lon)
    if zone is None:
        return None
    seconds = to_utc(photo.capture, TimeSettings(zone=zone)).seconds
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00").removesuffix(".000") + "Z"


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote, for the status bar."""

    path: Path
    written: int
    skipped: tuple[str, ...] = ()  # names of the photos left out (no location, or unusable)


EXPORT_FORMATS = {"csv": "CSV", "geojson": "GeoJSON", "gpx": "GPX"}


@dataclass(frozen=True)
class ExportPlan:
    """What an export will write, taken from the session in the window's thread; ``write``
    may then run in a background task without touching the session."""

    records: tuple
    skipped: tuple[str, ...]
    fmt: str

    def write(self, path: Path | str) -> ExportSummary:
        writers = {"csv": write_csv, "geojson": write_geojson, "gpx": write_gpx}
        writers[self.fmt](list(self.records), path)
        return ExportSummary(Path(path), len(self.records), self.skipped)


def export_plan(session: Session, keys: Sequence[str], fmt: str) -> ExportPlan:
    """What exporting ``keys`` as CSV, GeoJSON or GPX writes: each photo at its confirmed, else
    EXIF, else predicted position, with all of them as fields; the names of those left out
    (no location). Raises ValueError for an unknown format or when no photo among ``keys`` has
    a location."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    records = export_records(session, keys)
    if not records:
        raise ValueError(
            "none of these photos has a location yet (confirmed, from EXIF or predicted); "
            "predict them first"
        )
    done = {r.path for r in records}
    wanted = set(keys)
    skipped = tuple(p.name for p in session.photos if p.key in wanted and p.path not in done)
    return ExportPlan(tuple(records), skipped, fmt)
