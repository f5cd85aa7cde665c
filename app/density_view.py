"""PLACEHOLDER for the density view (``DensityView``): the real one (pyqtgraph, coastlines,
colour bar, cursor readout) is built by the map engineer and replaces this file at the merge.

It implements the agreed API and records the calls; it emits nothing by itself.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class DensityView(QWidget):
    cursorMoved = Signal(float, float, float)  # noqa: N815 (the agreed API)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.grid: np.ndarray | None = None
        self.title = ""
        self.markers: list[tuple[float, float, str]] = []
        self._label = QLabel("Density view placeholder", self)
        QVBoxLayout(self).addWidget(self._label)

    def set_density(self, grid: np.ndarray | None, title: str = "") -> None:
        self.grid, self.title = grid, title
        shape = "none" if grid is None else f"{grid.shape[0]} x {grid.shape[1]}"
        self._label.setText(f"Density view placeholder: {title} ({shape})")

    def set_markers(self, markers: list[tuple[float, float, str]]) -> None:
        self.markers = list(markers)
