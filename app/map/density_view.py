"""The density view: a photo's SHDD density on an equirectangular world (pyqtgraph).

Shows ``shdd.density_grid`` (per steradian; row 0 = north, column 0 starts at -180 degrees)
under the coastlines and borders of the offline basemap (``app.map.basemap``), with the colour ramp
of the map overlay (``app.map.density_colors``), a colour bar, markers for the best guess, the EXIF
position, the confirmed location and the candidates, and the coordinate and density under the
cursor. One degree of longitude is drawn as wide as one of latitude (aspect locked).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.map import basemap, density_colors

BACKGROUND = "#1d2026"
OUTLINE_PEN = pg.mkPen("#c9cdd4", width=1)
MARKER_STYLES = {  # kind -> (symbol, size, fill, outline); colours as on the map (map.css)
    "best": ("star", 18, "#e8590c", "#ffffff"),
    "exif": ("s", 11, "#1f6fd1", "#ffffff"),
    "confirmed": ("o", 12, "#2b9348", "#ffffff"),
    "candidate": ("o", 9, None, "#f0e0ff"),
}


class DensityView(QWidget):
    """pyqtgraph ImageItem of a density grid on a world map, with a colour bar and readout."""

    cursorMoved = Signal(float, float, float)  # noqa: N815 (Qt signal) lat, lon, density

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        log_scale: bool = True,
        decades: float = density_colors.DEFAULT_DECADES,
    ) -> None:
        super().__init__(parent)
        if not decades > 0:
            raise ValueError(f"decades must be positive (the shown dynamic range), got {decades}")
        self._log_scale = bool(log_scale)
        self._decades = float(decades)
        self._grid: np.ndarray | None = None

        self.plot = pg.PlotWidget(background=BACKGROUND)
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "longitude", units="°")
        item.setLabel("left", "latitude", units="°")
        item.showGrid(x=True, y=True, alpha=0.12)
        item.setAspectLocked(True, ratio=1.0)
        item.getViewBox().setLimits(xMin=-720, xMax=720, yMin=-540, yMax=540)  # no getting lost
        item.setMenuEnabled(False)
        item.hideButtons()

        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-10)
        item.addItem(self.image)
        x, y, connect = basemap.outline_lines()
        self.outlines = pg.PlotCurveItem(x=x, y=y, connect=connect, pen=OUTLINE_PEN)
        self.outlines.setZValue(5)
        item.addItem(self.outlines)
        self.markers = pg.ScatterPlotItem(pxMode=True)
        self.markers.setZValue(10)
        item.addItem(self.markers)

        colormap = pg.ColorMap(
            pos=np.asarray(density_colors.RAMP_POSITIONS),
            color=np.asarray(density_colors.RAMP_COLORS, dtype=np.ubyte),
        )
        self.color_bar = pg.ColorBarItem(
            values=(0.0, 1.0), colorMap=colormap, interactive=False, colorMapMenu=False, width=16
        )
        self.color_bar.setImageItem(self.image, insert_in=item)
        self._user_moved = False  # once the user pans or zooms, the view is theirs
        item.getViewBox().sigRangeChangedManually.connect(self._moved_by_user)
        item.getViewBox().sigResized.connect(self._resized)
        self.show_world()

        self.readout = QLabel("Move the cursor over the map to read the density.")
        self.readout.setObjectName("densityReadout")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, stretch=1)
        layout.addWidget(self.readout)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._update_bar_label()

    def show_world(self) -> None:
        """Fit the whole world (-180..180, -90..90) into the view, whatever its shape."""
        vb = self.plot.getPlotItem().getViewBox()
        width, height = vb.width(), vb.height()
        if width < 2 or height < 2:  # not laid out yet: the resize will come back here
            vb.setRange(xRange=(-180, 180), yRange=(-90, 90), padding=0.01)
            return
        per_degree = min(width / 360.0, height / 180.0) / 1.02  # a 1% margin each side
        half_x, half_y = width / per_degree / 2, height / per_degree / 2
        vb.setRange(xRange=(-half_x, half_x), yRange=(-half_y, half_y), padding=0)

    def _moved_by_user(self, *_args) -> None:
        self._user_moved = True

    def _resized(self, *_args) -> None:
        """A new size of the plot fits the world again (the locked aspect would otherwise
        keep the old range's height and crop the longitudes), unless the user has panned or
        zoomed."""
        if not self._user_moved:
            self.show_world()

    # ---- data --------------------------------------------------------------------------
    def set_density(self, grid: np.ndarray | None, title: str = "") -> None:
        """Show an ``(H, W)`` density per steradian (row 0 = north, column 0 at -180); None
        clears. Values below max / 10**decades stay transparent (the world shows through)."""
        self.plot.getPlotItem().setTitle(title or None)
        if grid is None:
            self._grid = None
            self.image.clear()
            return
        grid = np.asarray(grid, dtype=np.float64)
        if grid.ndim != 2 or grid.size == 0:
            raise ValueError(
                f"set_density needs a non-empty (height, width) grid, got shape {grid.shape}"
            )
        self._grid = grid
        self._show()

    def set_log_scale(self, log_scale: bool) -> None:
        self._log_scale = bool(log_scale)
        self._update_bar_label()
        if self._grid is not None:
            self._show()

    def _show(self) -> None:
        grid = self._grid
        top = float(np.max(grid, where=np.isfinite(grid), initial=0.0))
        levels = density_colors.density_levels(
            grid, log_scale=self._log_scale, decades=self._decades
        )
        shown = ~np.isnan(levels)
        if self._log_scale:
            lo, hi = (math.log10(top) - self._decades, math.log10(top)) if top > 0 else (0.0, 1.0)
            data = np.full(grid.shape, np.nan)
            data[shown] = np.log10(grid[shown])
        else:
            lo, hi = 0.0, top if top > 0 else 1.0
            data = np.where(shown, grid, np.nan)
        # pyqtgraph draws row 0 at the bottom of the rectangle: flip so that north is up.
        self.image.setImage(data[::-1], autoLevels=False, levels=(lo, hi))
        self.image.setRect(QRectF(-180.0, -90.0, 360.0, 180.0))
        self.color_bar.setLevels((lo, hi))

    def _update_bar_label(self) -> None:
        label = "log10 density (per sr)" if self._log_scale else "density (per sr)"
        self.color_bar.setLabel("left", label)

    def set_markers(self, markers: list[tuple[float, float, str]]) -> None:
        """``(lat, lon, kind)`` markers; kind is one of best, exif, confirmed, candidate."""
        spots = []
        for lat, lon, kind in markers:
            if kind not in MARKER_STYLES:
                raise ValueError(
                    f"unknown marker kind {kind!r}: use one of {', '.join(MARKER_STYLES)}"
                )
            symbol, size, fill, outline = MARKER_STYLES[kind]
            spots.append(
                {
                    "pos": (float(lon), float(lat)),
                    "symbol": symbol,
                    "size": size,
                    "brush": pg.mkBrush(fill) if fill else pg.mkBrush(0, 0, 0, 0),
                    "pen": pg.mkPen(outline, width=1.5),
                    "data": kind,
                }
            )
        self.markers.setData(spots)

    # ---- reading -----------------------------------------------------------------------
    def value_at(self, lat: float, lon: float) -> float:
        """The grid's density in the cell holding ``(lat, lon)``; NaN with no grid."""
        if self._grid is None:
            return math.nan
        height, width = self._grid.shape
        row = min(height - 1, max(0, math.floor((90.0 - lat) / 180.0 * height)))
        col = min(width - 1, max(0, math.floor((lon + 180.0) / 360.0 * width)))
        return float(self._grid[row, col])

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        item = self.plot.getPlotItem()
        if not item.vb.sceneBoundingRect().contains(scene_pos):
            return
        point = item.vb.mapSceneToView(scene_pos)
        lon, lat = point.x(), point.y()
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return
        value = self.value_at(lat, lon)
        text = f"{lat:.3f}, {lon:.3f}"
        if not math.isnan(value):
            text += f": {value:.4g} per sr"
        self.readout.setText(text)
        self.cursorMoved.emit(lat, lon, value)
