"""The photo session: which photos are open, what is known about each, and what the map shows.

Qt-free (napari's ``components`` layer): the photo list, the details panel and the map are views
of a :class:`Session` and listen to it through :class:`SessionListener`; the workers fill it in
(EXIF positions, predictions, place names) and the user's corrections land here as confirmed
locations. What an export writes is planned in :mod:`app.model.exports`.

A photo's key is its resolved absolute path as text (:func:`identify`), so the same file
reached by two names (a symlink, ``./a.jpg`` and ``a.jpg``) is one photo.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from app.model.coordinates import LatLon
from app.model.geotagging import ProposedPlace, TimeGuess
from app.model.pins import CandidatePin, PhotoPin, PinKind
from locdiff_core.earth import great_circle_distance_km
from locdiff_core.engines import Engine

if TYPE_CHECKING:
    from locdiff_core.photo.photo_time import CaptureTime


class PhotoState(enum.Enum):
    """What the status column says, from the most to the least telling."""

    ERROR = "error"
    CONFIRMED = "confirmed"
    PROPOSED = "from track"
    PREDICTED = "predicted"
    EXIF = "EXIF GPS"
    NO_LOCATION = "no location"
    READING = "reading…"


@dataclass(frozen=True, eq=False)
class PhotoPrediction:
    """One photo's prediction as the app keeps it (a plain copy of the pipeline's answer).
    Compared by identity: a new prediction is a new object, even with the same numbers (the
    arrays would make ``==`` ambiguous).

    ``engine`` made it (:class:`locdiff_core.engines.Engine`). LocDiffusion: ``best`` is the
    centre of the densest cluster of samples, ``centre`` the centre of all samples, shares and
    radii count samples. GeoCLIP and LocDiff-H: ``best`` is the most probable place of the
    most probable cluster, ``centre`` the top gallery place, shares and radii count
    probability; ``samples`` are the top places (GeoCLIP) or LocDiffusion's samples (hybrid).
    """

    best: LatLon
    centre: LatLon  # the engine's paper answer
    candidates: tuple[tuple[float, float, float], ...]  # ranked (lat, lon, share)
    radius50_km: float  # around the best guess
    radius90_km: float
    samples: np.ndarray  # (K, 2) lat, lon degrees
    density: np.ndarray | None = None  # (H, W) per steradian, row 0 = north, col 0 = -180
    engine: Engine = Engine.LOCDIFF


@dataclass
class Photo:
    """Everything known about one open photo."""

    path: Path  # absolute, as the user gave it
    key: str  # resolved absolute path: the photo's identity
    exif: LatLon | None = None  # the position stored in the file
    exif_alt: float | None = None  # metres, when the file has it
    capture: CaptureTime | None = None  # when the camera says it was taken
    exif_read: bool = False
    load_error: str | None = None  # the file cannot be used: not an image, damaged, unreadable
    gps_note: str | None = None  # the file's own GPS is unreadable (the photo itself is fine)
    queued: bool = False  # waiting for (or in) a prediction
    prediction: PhotoPrediction | None = None
    predict_error: str | None = None
    confirmed: LatLon | None = None  # the user's choice: accepted, dragged, typed or clicked
    confirmed_alt: float | None = None  # metres: a track's elevation, accepted with its place
    proposed: ProposedPlace | None = None  # where the tracks put it (not yet accepted)
    track_note: str | None = None  # why the tracks left it alone
    time_guess: TimeGuess | None = None  # the prediction bounded by its neighbours in time
    write_note: str | None = None  # outcome of the last write of its GPS

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def error(self) -> str | None:
        return self.load_error or self.predict_error

    @property
    def state(self) -> PhotoState:
        if self.error:
            return PhotoState.ERROR
        if self.confirmed is not None:
            return PhotoState.CONFIRMED
        if self.proposed is not None:
            return PhotoState.PROPOSED
        if self.prediction is not None:
            return PhotoState.PREDICTED
        if self.exif is not None:
            return PhotoState.EXIF
        return PhotoState.NO_LOCATION if self.exif_read else PhotoState.READING

    def status_text(self) -> str:
        state = self.state
        if state is PhotoState.ERROR:
            return f"error: {self.error}"
        text = state.value
        if self.queued:
            text = f"{text} · queued" if state is not PhotoState.NO_LOCATION else "queued"
        if state is PhotoState.PREDICTED and self.exif is not None:
            text += " · has EXIF GPS"
        if state is PhotoState.PROPOSED:
            text += f" · {self.proposed.source.removeprefix('track: ')}"
        elif self.track_note and state in (PhotoState.NO_LOCATION, PhotoState.PREDICTED):
            text += f" · not on a track: {self.track_note}"
        if self.write_note:
            text += f" · {self.write_note}"
        return text

    def location(self) -> tuple[LatLon, PinKind] | None:
        """The photo's main pin: confirmed, else proposed by a track, else the best guess,
        else the EXIF position."""
        if self.confirmed is not None:
            return self.confirmed, PinKind.CONFIRMED
        if self.proposed is not None:
            return self.proposed.point, PinKind.PROPOSED
        if self.prediction is not None:
            return self.prediction.best, PinKind.BEST
        if self.exif is not None:
            return self.exif, PinKind.EXIF
        return None


class SessionListener(Protocol):
    """What views of a session implement (the photo list's Qt model does)."""

    def photos_about_to_be_added(self, first: int, last: int) -> None: ...
    def photos_added(self) -> None: ...
    def photos_changed(self, rows: Sequence[int] | None) -> None: ...  # None: every row
    def photos_about_to_be_reset(self) -> None: ...
    def photos_reset(self) -> None: ...


def identify(path: Path | str) -> tuple[Path, str]:
    """A found photo as ``(absolute path, key)``: the key is the resolved absolute path as text,
    or the absolute path itself when it cannot be resolved (a broken or looping link)."""
    absolute = Path(path).absolute()
    try:
        return absolute, str(absolute.resolve())
    except (OSError, RuntimeError):
        return absolute, str(absolute)


def place_key(lat: float, lon: float) -> tuple[float, float]:
    """Places are remembered per point rounded to about 10 m."""
    return round(lat, 4), round(lon, 4)


Confirmed = tuple[LatLon | None, float | None]  # a confirmed location and its altitude


@dataclass(frozen=True)
class WriteItem:
    path: Path
    key: str
    lat: float
    lon: float
    alt: float | None = None  # metres


class Session:
    """The open photos, in the order they were added."""

    def __init__(self) -> None:
        self.photos: list[Photo] = []
        self._rows: dict[str, int] = {}
        self._places: dict[tuple[float, float], str] = {}
        self.listeners: list[SessionListener] = []

    # -- photos --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.photos)

    def photo(self, key: str) -> Photo | None:
        row = self._rows.get(key)
        return None if row is None else self.photos[row]

    def row_of(self, key: str) -> int | None:
        return self._rows.get(key)

    def add_found(self, found: Iterable[tuple[Path, str]]) -> list[Photo]:
        """Add photos already found: ``(absolute path, key)`` pairs as :func:`identify` makes them
        (what :class:`app.workers.loaders.PhotoFinder` delivers). Known keys are skipped.

        Returns the photos added (the caller reads their EXIF and thumbnails in the background).
        """
        new: list[Photo] = []
        seen: set[str] = set()
        for absolute, key in found:
            if key in self._rows or key in seen:
                continue
            seen.add(key)
            new.append(Photo(Path(absolute), key))
        if new:
            first = len(self.photos)
            self._notify("photos_about_to_be_added", first, first + len(new) - 1)
            for photo in new:
                self._rows[photo.key] = len(self.photos)
                self.photos.append(photo)
            self._notify("photos_added")
        return new

    def remove(self, keys: Iterable[str]) -> None:
        drop = set(keys) & self._rows.keys()
        if not drop:
            return
        self._notify("photos_about_to_be_reset")
        self.photos = [p for p in self.photos if p.key not in drop]
        self._rows = {p.key: i for i, p in enumerate(self.photos)}
        self._notify("photos_reset")

    def keys(self) -> list[str]:
        return [p.key for p in self.photos]

    # -- what the workers report -----------------------------------------------------------
    def set_exif(
        self,
        key: str,
        exif: LatLon | None,
        *,
        error: str | None = None,
        unusable: bool = False,
        alt: float | None = None,
        capture: CaptureTime | None = None,
    ) -> None:
        """The result of reading a photo's GPS (and altitude) and its capture time.
        ``unusable``: the error means the file itself cannot be used (not an image, missing,
        unreadable); otherwise it is a note on its GPS. A load error already found (by the
        thumbnail, which may finish first) is kept."""
        photo = self.photo(key)
        if photo is None:
            return
        photo.exif, photo.exif_read = exif, True
        photo.exif_alt, photo.capture = (alt if exif is not None else None), capture
        if unusable and photo.load_error is None:
            photo.load_error = error
        photo.gps_note = None if unusable else error
        self._changed(key)

    def set_load_error(self, key: str, message: str) -> None:
        """The photo's image data cannot be decoded (found while making its thumbnail); the
        first reason found is kept."""
        photo = self.photo(key)
        if photo is not None and photo.load_error is None:
            photo.load_error = message
            self._changed(key)

    def set_queued(self, keys: Iterable[str], queued: bool) -> None:
        rows = []
        for key in keys:
            photo = self.photo(key)
            if photo is not None and photo.queued != queued:
                photo.queued = queued
                rows.append(self._rows[key])
        self._notify("photos_changed", rows)

    def set_prediction(self, key: str, prediction: PhotoPrediction) -> None:
        photo = self.photo(key)
        if photo is not None:
            photo.prediction, photo.predict_error, photo.queued = prediction, None, False
            self._changed(key)

    def set_predict_error(self, key: str, message: str) -> None:
        photo = self.photo(key)
        if photo is not None:
            photo.predict_error, photo.queued = message, False
            self._changed(key)

    def set_write_note(self, key: str, note: str | None) -> None:
        photo = self.photo(key)
        if photo is not None:
            photo.write_note = note
            self._changed(key)

    # -- the user's choices ------------------------------------------------------------------
    def confirm(self, key: str, lat: float, lon: float, alt: float | None = None) -> None:
        """Make ``(lat, lon)`` the photo's confirmed location (``alt``: metres, if known)."""
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"({lat}, {lon}) is not a location: need -90..90, -180..180")
        photo = self.photo(key)
        if photo is not None:
            photo.confirmed, photo.confirmed_alt = (float(lat), float(lon)), alt
            self._changed(key)

    def confirmed_of(self, keys: Iterable[str]) -> dict[str, Confirmed]:
        """The confirmed location (and altitude) of each of ``keys`` still open."""
        out = {}
        for key in keys:
            photo = self.photo(key)
            if photo is not None:
                out[key] = (photo.confirmed, photo.confirmed_alt)
        return out

    def restore_confirmed(self, values: dict[str, Confirmed]) -> None:
        """Put back confirmed locations as :meth:`confirmed_of` gave them (photos closed since
        are skipped); one change for all."""
        rows = []
        for key, (point, alt) in values.items():
            photo = self.photo(key)
            if photo is not None:
                photo.confirmed, photo.confirmed_alt = point, alt
                rows.append(self._rows[key])
        if rows:
            self._notify("photos_changed", rows)

    def accept_proposed(self, keys: Iterable[str]) -> list[str]:
        """Confirm the place the tracks propose (with its elevation) for each of ``keys``
        that has one; returns those."""
        done = []
        for key in keys:
            photo = self.photo(key)
            if photo is not None and photo.proposed is not None and photo.confirmed is None:
                self.confirm(key, photo.proposed.lat, photo.proposed.lon, photo.proposed.alt)
                done.append(key)
        return done

    def set_proposals(
        self, proposed: dict[str, ProposedPlace | None], notes: dict[str, str | None]
    ) -> None:
        """What matching by time found: a place per photo key, or why there is none (keys
        left out lose theirs). One change for every row that differs."""
        rows = []
        for row, photo in enumerate(self.photos):
            place, note = proposed.get(photo.key), notes.get(photo.key)
            if place != photo.proposed or note != photo.track_note:
                photo.proposed, photo.track_note = place, note
                rows.append(row)
        if rows:
            self._notify("photos_changed", rows)

    def set_time_guesses(self, guesses: dict[str, TimeGuess | None]) -> None:
        """The time-aware guesses of these photos (``None``: no longer any)."""
        rows = []
        for key, guess in guesses.items():
            photo = self.photo(key)
            if photo is not None and photo.time_guess != guess:
                photo.time_guess = guess
                rows.append(self._rows[key])
        if rows:
            self._notify("photos_changed", rows)

    def accept_best(self, keys: Iterable[str]) -> list[str]:
        """Confirm the best guess of every predicted photo among ``keys`` (its time-aware
        guess where it has one); returns those."""
        done = []
        for key in keys:
            photo = self.photo(key)
            if photo is not None and photo.prediction is not None:
                guess = photo.time_guess
                self.confirm(key, *(guess.best if guess else photo.prediction.best))
                done.append(key)
        return done

    def clear_confirmation(self, keys: Iterable[str]) -> None:
        for key in keys:
            photo = self.photo(key)
            if photo is not None and photo.confirmed is not None:
                photo.confirmed, photo.confirmed_alt = None, None
                self._changed(key)

    # -- place names ---------------------------------------------------------------------------
    def place_at(self, lat: float, lon: float) -> str | None:
        """The name found for this point, or None when it has not been looked up yet."""
        return self._places.get(place_key(lat, lon))

    def set_places(self, places: Iterable[tuple[float, float, str]]) -> None:
        new = set()
        for lat, lon, label in places:
            new.add(place_key(lat, lon))
            self._places[place_key(lat, lon)] = label
        rows = [
            row
            for row, photo in enumerate(self.photos)
            if any(place_key(*point) in new for point in self.points_of(photo))
        ]
        self._notify("photos_changed", rows)

    def points_of(self, photo: Photo) -> list[LatLon]:
        """Every point the details panel names for a photo."""
        points = [p for p in (photo.confirmed, photo.exif) if p is not None]
        if photo.proposed is not None:
            points.append(photo.proposed.point)
        if photo.time_guess is not None:
            points.append(photo.time_guess.best)
        if photo.prediction is not None:
            pred = photo.prediction
            points += [pred.best, pred.centre] + [(c[0], c[1]) for c in pred.candidates]
        return points

    def unnamed_points(self, photos: Iterable[Photo]) -> list[LatLon]:
        """Points of these photos that have no place name yet (each once)."""
        todo = {}
        for photo in photos:
            for lat, lon in self.points_of(photo):
                if place_key(lat, lon) not in self._places:
                    todo[place_key(lat, lon)] = (lat, lon)
        return list(todo.values())

    def place_of(self, photo: Photo) -> str:
        """The place column: the name of the photo's main location, if known."""
        loc = photo.location()
        return "" if loc is None else self.place_at(*loc[0]) or ""

    # -- what the map shows --------------------------------------------------------------------
    def pins(self) -> list[PhotoPin]:
        pins = []
        for photo in self.photos:
            loc = photo.location()
            if loc is not None:
                (lat, lon), kind = loc
                place = self.place_of(photo)
                label = f"{photo.name} — {place}" if place else photo.name
                pins.append(PhotoPin(photo.key, lat, lon, kind, label))
        return pins

    def candidate_pins(self, key: str) -> list[CandidatePin]:
        photo = self.photo(key)
        if photo is None or photo.prediction is None:
            return []
        pins = []
        for rank, (lat, lon, share) in enumerate(photo.prediction.candidates, 1):
            place = self.place_at(lat, lon)
            label = f"#{rank}: {share:.0%}" + (f" — {place}" if place else "")
            pins.append(CandidatePin(lat, lon, share, label))
        return pins

    def samples_of(self, key: str) -> list[tuple[float, float]]:
        photo = self.photo(key)
        if photo is None or photo.prediction is None:
            return []
        return [(float(a), float(b)) for a, b in photo.prediction.samples]

    # -- write-back -------------------------------------------------------------------
    def write_plan(self, keys: Iterable[str]) -> list[WriteItem]:
        """The confirmed photos among ``keys`` (in list order): what "Write to photos" writes."""
        wanted = set(keys)
        return [
            WriteItem(p.path, p.key, *p.confirmed, p.confirmed_alt)
            for p in self.photos
            if p.key in wanted and p.confirmed is not None and not p.load_error
        ]

    # -- helpers -----------------------------------------------------------------------------------
    def _changed(self, key: str) -> None:
        self._notify("photos_changed", [self._rows[key]])

    def _notify(self, method: str, *args) -> None:
        for listener in list(self.listeners):
            getattr(listener, method)(*args)


def distance_km(a: LatLon, b: LatLon) -> float:
    """Great-circle distance in km between two points
    (:func:`locdiff_core.earth.great_circle_distance_km`, no torch needed)."""
    return great_circle_distance_km(a[0], a[1], b[0], b[1])
