"""What the map shows, as plain data: the contract between the photo session and the map view.

Qt-free, so the session, the exports and the tests build these without a display. The map
(``app.map.map_view.MapView``) receives lists of these and pushes them to its one loaded page.
Coordinates are ``(lat, lon)`` in degrees, latitude first (as everywhere: ``locdiff_core.geo``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PinKind(enum.Enum):
    """Why a photo has a pin; each kind has its own style on the map."""

    EXIF = "exif"  # the location stored in the photo
    BEST = "best"  # the model's best guess, not yet confirmed
    CONFIRMED = "confirmed"  # the user's choice (accepted, dragged, typed or set by right-click)
    PROPOSED = "proposed"  # where a GPS track puts it by time, not yet accepted


@dataclass(frozen=True)
class PhotoPin:
    """One photo's main pin. ``key`` identifies the photo (its absolute path as text)."""

    key: str
    lat: float
    lon: float
    kind: PinKind
    label: str  # shown in the tooltip: file name, and place name when known


@dataclass(frozen=True)
class CandidatePin:
    """A ranked candidate of the selected photo's prediction; sized by ``probability``."""

    lat: float
    lon: float
    probability: float  # share of samples in this candidate's cluster, 0..1
    label: str
