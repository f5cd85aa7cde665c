"""The centre of the window: the map and the density view in tabs, with a small map toolbar.

Everything reaches the map through the agreed ``MapView`` API (``app.map.map_view``): the photos'
pins, the selection, and for the current photo its candidates, samples and density overlay
(coloured by ``app.map.density_colors.density_rgba``, with its legend). The toolbar sets the
overlay's opacity and shows or hides the raw samples.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.map.density_colors import density_rgba, legend, png_data_url, strength, to_web_mercator
from app.map.density_view import DensityView
from app.map.map_view import MapView
from app.model.session import Session

DEFAULT_OPACITY = 70  # percent (the colours fade with the density: the basemap shows through)


class MapPanel(QWidget):
    def __init__(self, session: Session, tile_url: str | None, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.map = MapView(self, tile_url=tile_url or None)
        self.density_view = DensityView(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.map, "Map")
        self.tabs.addTab(self.density_view, "Density")
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(DEFAULT_OPACITY)
        self.opacity.setMaximumWidth(160)
        self.opacity.setToolTip("Opacity of the probability map over the map")
        self.opacity.setMinimumWidth(80)
        self.opacity.valueChanged.connect(self._set_opacity)
        self.samples = QCheckBox("Samples", self)
        self.samples.setToolTip("Show the decoded samples of the current photo")
        self.samples.setChecked(True)
        self.samples.toggled.connect(self.map.set_samples_visible)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Probability map", self))
        bar.addWidget(self.opacity)
        bar.addWidget(self.samples)
        bar.addStretch(1)
        self.bar = bar  # the window adds its tools (the place search) at the end
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.tabs, 1)
        self.map.ready.connect(self._leave_drops_to_the_window)
        self._leave_drops_to_the_window()
        self._strength = 1.0  # the shown density's (density_colors.strength)
        self._set_opacity()
        self.map.set_samples_visible(True)
        self._density_of: tuple | None = None  # (key, prediction) whose density is shown

    def _set_opacity(self) -> None:
        """The slider's opacity, less for a nearly flat density (it would tint the whole map)."""
        self.map.set_density_opacity(self.opacity.value() / 100 * self._strength)

    def _leave_drops_to_the_window(self) -> None:
        """A web view takes dropped files itself (it would open them as pages); photos dropped
        on the map must reach the window, which adds them."""
        for widget in (self.map, *self.map.findChildren(QWidget)):
            widget.setAcceptDrops(False)

    def warm_up(self) -> None:
        """Colour and encode a tiny density once, so the first prediction shown does not pay
        the imports and first calls (PIL's PNG encoder, numpy's interp) in front of the user."""
        png_data_url(to_web_mercator(density_rgba(np.ones((2, 4)))))

    def show_photo(self, key: str | None) -> None:
        """Push the current photo's prediction layers (or clear them)."""
        photo = None if key is None else self.session.photo(key)
        pred = None if photo is None else photo.prediction
        if pred is None:
            self.map.set_candidates([], [])
        else:
            self.map.set_candidates(self.session.candidate_pins(key), self.session.samples_of(key))
        exif = None if photo is None else photo.exif
        self.map.set_link([exif, pred.best] if exif is not None and pred is not None else [])
        if self._density_of != (key, pred):
            self._density_of = (key, pred)
            grid = None if pred is None else pred.density
            self.map.set_density(None if grid is None else density_rgba(grid))
            self.map.set_legend(None if grid is None else legend(grid))
            self._strength = 1.0 if grid is None else strength(grid)
            self._set_opacity()
            self.density_view.set_density(grid, "" if photo is None else photo.name)
        self.density_view.set_markers(self._markers(key))

    def _markers(self, key: str | None) -> list[tuple[float, float, str]]:
        photo = None if key is None else self.session.photo(key)
        if photo is None:
            return []
        markers = []
        if photo.prediction is not None:
            markers += [(c[0], c[1], "candidate") for c in photo.prediction.candidates[1:]]
            markers.append((*photo.prediction.best, "best"))
        if photo.exif is not None:
            markers.append((*photo.exif, "exif"))
        if photo.confirmed is not None:
            markers.append((*photo.confirmed, "confirmed"))
        return markers
