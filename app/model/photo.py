"""One open photo as the session keeps it: what is known about it (its file's GPS and time,
the prediction, the track's proposal, the user's confirmation, what was written) and the state
the list shows. Qt-free and torch-free."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.model.coordinates import LatLon
from app.model.geotagging import ProposedPlace, TimeGuess
from app.model.pins import PinKind
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

    ``engine`` made it (:class:`locdiff_core.engines.Engine`) with ``model``. LocDiffusion:
    ``best`` is the mode of the network's posterior, ``centre`` the centre of all samples,
    candidates the clusters of samples, shares and radii count samples. GeoCLIP and LocDiff-H:
    ``best`` is the most probable place of the most probable cluster, ``centre`` the top
    gallery place, shares and radii count probability; ``samples`` are the top places
    (GeoCLIP) or LocDiffusion's samples (hybrid).
    """

    best: LatLon
    centre: LatLon  # the engine's paper answer
    candidates: tuple[tuple[float, float, float], ...]  # ranked (lat, lon, share)
    radius50_km: float  # around the best guess
    radius90_km: float
    samples: np.ndarray  # (K, 2) lat, lon degrees
    density: np.ndarray | None = None  # (H, W) per steradian, row 0 = north, col 0 = -180
    engine: Engine = Engine.LOCDIFF
    model: str = ""  # the model that made it ("run0: degree 8, ViT-L-14"); "" when not known


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
    confirmed_from: str | None = None  # what was confirmed: "a correction", "a guess", "a track"
    written: tuple[LatLon, str] | None = None  # what the app last wrote into the file, and from
    exif_written_from: str | None = None  # the file's GPS is the app's own write (from what)
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
        if self.exif_written_from and state in (PhotoState.EXIF, PhotoState.PREDICTED):
            text += f" (written here from {self.exif_written_from})"
        if state is PhotoState.PROPOSED:
            text += f" · {self.proposed.source.removeprefix('track: ')}"
        elif self.track_note and state in (PhotoState.NO_LOCATION, PhotoState.PREDICTED):
            text += f" · not on a track: {self.track_note}"
        if self.write_note:
            text += f" · {self.write_note}"
        return text

    def location(self) -> tuple[LatLon, PinKind] | None:
        """The photo's main pin: confirmed, else the EXIF position (a guess never displaces
        it), else proposed by a track, else the best guess."""
        if self.confirmed is not None:
            return self.confirmed, PinKind.CONFIRMED
        if self.exif is not None:
            return self.exif, PinKind.EXIF
        if self.proposed is not None:
            return self.proposed.point, PinKind.PROPOSED
        if self.prediction is not None:
            return self.prediction.best, PinKind.BEST
        return None
