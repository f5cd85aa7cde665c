"""The photo session: which photos are open, what is known about each, and what the map shows.

Qt-free (napari's ``components`` layer): the photo list, the details panel and the map are views
of a :class:`Session` and listen to it through :class:`SessionListener`; the workers fill it in
(EXIF positions, predictions, place names) and the user's corrections land here as confirmed
locations. Each photo is a :class:`app.model.photo.Photo`; what an export writes is planned in
:mod:`app.model.exports`, and the session is kept on disk by :mod:`app.model.session_store`.

A photo's key is its resolved absolute path as text (:func:`identify`), so the same file
reached by two names (a symlink, ``./a.jpg`` and ``a.jpg``) is one photo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.model.coordinates import LatLon
from app.model.geotagging import ProposedPlace, TimeGuess
from app.model.photo import Photo, PhotoPrediction
from app.model.pins import CandidatePin, PhotoPin
from locdiff_core.earth import great_circle_distance_km

if TYPE_CHECKING:
    from locdiff_core.photo.photo_time import CaptureTime


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


WRITTEN_TOLERANCE = 1e-5  # degrees (about a metre): EXIF stores rationals, not our floats
Confirmed = tuple[LatLon | None, float | None, str | None]  # location, altitude, from what


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
        photo.exif_written_from = None
        if exif is not None and photo.written is not None:
            (lat, lon), source = photo.written
            if abs(exif[0] - lat) < WRITTEN_TOLERANCE and abs(exif[1] - lon) < WRITTEN_TOLERANCE:
                photo.exif_written_from = source  # our own write read back: not evidence
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

    def mark_written(self, key: str) -> None:
        """The photo's confirmed location is now in its file: remember that, and from what,
        so that reading it back is not taken for the file's own GPS."""
        photo = self.photo(key)
        if photo is not None and photo.confirmed is not None:
            photo.written = (photo.confirmed, photo.confirmed_from or "a correction")

    def set_write_note(self, key: str, note: str | None) -> None:
        photo = self.photo(key)
        if photo is not None:
            photo.write_note = note
            self._changed(key)

    # -- the user's choices ------------------------------------------------------------------
    def confirm(
        self,
        key: str,
        lat: float,
        lon: float,
        alt: float | None = None,
        source: str = "a correction",
    ) -> None:
        """Make ``(lat, lon)`` the photo's confirmed location (``alt``: metres, if known;
        ``source``: what it came from, remembered once it is written)."""
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"({lat}, {lon}) is not a location: need -90..90, -180..180")
        photo = self.photo(key)
        if photo is not None:
            photo.confirmed, photo.confirmed_alt = (float(lat), float(lon)), alt
            photo.confirmed_from = source
            self._changed(key)

    def confirmed_of(self, keys: Iterable[str]) -> dict[str, Confirmed]:
        """The confirmed location (and altitude) of each of ``keys`` still open."""
        out = {}
        for key in keys:
            photo = self.photo(key)
            if photo is not None:
                out[key] = (photo.confirmed, photo.confirmed_alt, photo.confirmed_from)
        return out

    def restore_confirmed(self, values: dict[str, Confirmed]) -> None:
        """Put back confirmed locations as :meth:`confirmed_of` gave them (photos closed since
        are skipped); one change for all."""
        rows = []
        for key, (point, alt, source) in values.items():
            photo = self.photo(key)
            if photo is not None:
                photo.confirmed, photo.confirmed_alt, photo.confirmed_from = point, alt, source
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
                place = photo.proposed
                self.confirm(key, place.lat, place.lon, place.alt, source="a track")
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
                if guess is not None:
                    self.confirm(key, *guess.best, source="a time-aware guess")
                else:
                    self.confirm(key, *photo.prediction.best, source="a guess")
                done.append(key)
        return done

    def clear_confirmation(self, keys: Iterable[str]) -> None:
        for key in keys:
            photo = self.photo(key)
            if photo is not None and photo.confirmed is not None:
                photo.confirmed, photo.confirmed_alt, photo.confirmed_from = None, None, None
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
