"""PLACEHOLDER for the map (``MapView``): the real one, Leaflet in a ``QWebEngineView``, is built
by the map engineer on another branch and replaces this file when the branches merge.

It implements exactly the agreed API and only records what it is told (the last pins,
selection, candidates, density...), so the window runs and its tests can check what it pushes
to the map. It emits nothing by itself. ``evaluate("window.locdiffState()", callback)`` answers
with the recorded state in the page's schema, so tests read the map through one call that the
real map answers from its page.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.pins import CandidatePin, PhotoPin


class MapView(QWidget):
    ready = Signal()
    pinClicked = Signal(str)  # noqa: N815 (Qt signal names are the agreed API)
    pinMoved = Signal(str, float, float)  # noqa: N815
    locationRequested = Signal(float, float)  # noqa: N815

    def __init__(self, parent=None, *, tile_url: str | None = None) -> None:
        super().__init__(parent)
        self.tile_url = tile_url or None
        self.photos: list[PhotoPin] = []
        self.selection: list[str] = []
        self.candidates: list[CandidatePin] = []
        self.samples: list[tuple[float, float]] = []
        self.samples_visible = True
        self.density: np.ndarray | None = None
        self.density_opacity = 0.6
        self.fitted: list[tuple[float, float]] = []
        self._label = QLabel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self._label)
        self._show()

    def is_ready(self) -> bool:
        return True

    def set_tile_url(self, url: str | None) -> None:
        self.tile_url = url or None

    def set_photos(self, pins: list[PhotoPin]) -> None:
        self.photos = list(pins)
        self._show()

    def set_selection(self, keys: list[str], fit: bool = True) -> None:
        self.selection = list(keys)
        if fit:
            chosen = set(keys)
            self.fit_to([(p.lat, p.lon) for p in self.photos if p.key in chosen])
        self._show()

    def set_candidates(
        self, candidates: list[CandidatePin], samples: list[tuple[float, float]]
    ) -> None:
        self.candidates, self.samples = list(candidates), list(samples)
        self._show()

    def set_samples_visible(self, visible: bool) -> None:
        self.samples_visible = bool(visible)

    def set_density(self, rgba: np.ndarray | None) -> None:
        if rgba is not None and (rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8):
            raise ValueError(f"density overlay must be (H, W, 4) uint8, got {rgba.shape}")
        self.density = rgba
        self._show()

    def set_density_opacity(self, opacity: float) -> None:
        self.density_opacity = float(opacity)

    def fit_to(self, points: list[tuple[float, float]]) -> None:
        self.fitted = list(points)

    def evaluate(self, js: str, callback: Callable[[object], None]) -> None:
        if js.strip() != "window.locdiffState()":
            raise ValueError("the placeholder map answers only window.locdiffState()")
        state = self.state()
        QTimer.singleShot(0, lambda: callback(state))

    def state(self) -> dict:
        """The recorded state in the schema of the page's ``window.locdiffState()``."""
        return {
            "photos": [
                {"key": p.key, "lat": p.lat, "lon": p.lon, "kind": p.kind.value}
                for p in self.photos
            ],
            "selection": list(self.selection),
            "candidates": [
                {"lat": c.lat, "lon": c.lon, "probability": c.probability} for c in self.candidates
            ],
            "samples": len(self.samples),
            "samplesVisible": self.samples_visible,
            "density": self.density is not None,
            "densityOpacity": self.density_opacity,
            "tiles": "offline",
            "basemapFeatures": 0,
        }

    def _show(self) -> None:
        self._label.setText(
            f"Map placeholder: {len(self.photos)} photo pins, {len(self.selection)} selected, "
            f"{len(self.candidates)} candidates"
        )
