"""The map: Leaflet in a ``QWebEngineView``, one local page loaded once, state pushed into it.

The page and what it may load are ``app.map.map_page``'s. The offline basemap
(``app.map.basemap``) is always drawn under the online tiles, whose failures leave it showing,
so the map works with no network; without tiles, place names are labelled by zoom and size
(``app.map.place_labels``). Python pushes pins and overlays with ``runJavaScript`` (one batched
call per update: 1,000 pins are one call); the page answers through a ``QWebChannel`` bridge.

Calls made before the page is ready are kept and replayed once it is: the latest call of each
kind (photos, selection, candidates, ...) in the order made, then one-off calls (``fit_to``,
``evaluate``). The same state is replayed if the page's renderer process dies and is reloaded.

Demo: ``python -m app.map.map_demo`` opens the map with a few sample pins.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QPoint, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWebChannel import QWebChannel
from PySide6.QtWebEngineCore import QWebEngineSettings
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QMenu, QVBoxLayout, QWidget

from app.map import basemap, density_colors
from app.map.map_page import (
    WEB_DIR,
    MapPage,
    RequestFilter,
    map_profile,
    page_html,
    tile_attribution,
)
from app.map.place_labels import LabelIndex
from app.model.geotagging import TrackLine
from app.model.pins import CandidatePin, PhotoPin
from app.model.settings import check_tile_url

log = logging.getLogger(__name__)

# Runs a script with the global eval and returns [ok, value or message] as JSON text.
_EVALUATE_JS = """(function () {
  try {
    const value = (0, eval)(%s);
    return JSON.stringify([true, value === undefined ? null : value]);
  } catch (e) {
    return JSON.stringify([false, String(e)]);
  }
})()"""


class _Bridge(QObject):
    """The page's side of the conversation (``channel.objects.bridge`` in map.js)."""

    loaded = Signal()
    clicked = Signal(str)
    moved = Signal(str, float, float)
    context = Signal(float, float, int, int)
    track = Signal(int, float, float, int, int)
    candidate = Signal(int)
    tiles = Signal(str)
    view = Signal(float, float, float, float, float)

    @Slot()
    def pageLoaded(self) -> None:  # noqa: N802 (the name the page calls)
        self.loaded.emit()

    @Slot(str)
    def pinClicked(self, key: str) -> None:  # noqa: N802
        self.clicked.emit(key)

    @Slot(str, float, float)
    def pinMoved(self, key: str, lat: float, lon: float) -> None:  # noqa: N802
        self.moved.emit(key, lat, lon)

    @Slot(float, float, int, int)
    def contextMenu(self, lat: float, lon: float, x: int, y: int) -> None:  # noqa: N802
        self.context.emit(lat, lon, x, y)

    @Slot(int, float, float, int, int)
    def trackClicked(self, track_id: int, lat: float, lon: float, x: int, y: int) -> None:  # noqa: N802
        self.track.emit(track_id, lat, lon, x, y)

    @Slot(int)
    def candidateClicked(self, rank: int) -> None:  # noqa: N802
        self.candidate.emit(rank)

    @Slot(str)
    def tilesChanged(self, state: str) -> None:  # noqa: N802
        self.tiles.emit(state)

    @Slot(float, float, float, float, float)
    def viewChanged(self, south: float, west: float, north: float, east: float, zoom: float):  # noqa: N802
        self.view.emit(south, west, north, east, zoom)


class _LabelNotifier(QObject):
    """The place-name index of every map in the process, built once on its own thread (about
    a second); ``ready`` fires on the GUI thread when it is there."""

    ready = Signal()

    def __init__(self, parent: QObject | None) -> None:
        super().__init__(parent)
        self._index: LabelIndex | None = None
        self._thread: threading.Thread | None = None

    def index(self) -> LabelIndex | None:
        """The index, or None while it is built (the first call starts it)."""
        if self._index is None and self._thread is None:
            self._thread = threading.Thread(target=self._build, name="map-names", daemon=True)
            self._thread.start()
        return self._index

    def _build(self) -> None:
        try:
            self._index = LabelIndex.shipped()
        except (OSError, ValueError) as exc:  # the place data is missing: no names
            log.warning("map: no place names (%s)", exc)
            return
        self.ready.emit()  # queued to the GUI thread's connections


_notifier: _LabelNotifier | None = None


def _label_notifier() -> _LabelNotifier:
    global _notifier
    if _notifier is None:
        _notifier = _LabelNotifier(QCoreApplication.instance())
    return _notifier


def _js_call(function: str, *args) -> str:
    return f"locdiff.{function}({', '.join(json.dumps(a, separators=(',', ':')) for a in args)});"


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


class MapView(QWidget):
    """Leaflet in a QWebEngineView; see the module docstring."""

    ready = Signal()  # page loaded and the bridge is up
    pinClicked = Signal(str)  # noqa: N815 (Qt signal names)
    pinMoved = Signal(str, float, float)  # noqa: N815
    locationRequested = Signal(float, float)  # noqa: N815
    offsetRequested = Signal(float, float)  # noqa: N815 (the selected photo was taken here)
    candidateClicked = Signal(int)  # noqa: N815 (its rank, 0 first)
    tilesChanged = Signal(str)  # noqa: N815 ("online" | "offline" | "unreachable" | "pack")

    def __init__(self, parent: QWidget | None = None, *, tile_url: str | None = None) -> None:
        super().__init__(parent)
        self._tile_url = check_tile_url(tile_url)
        self._ready = False
        self._state: dict[str, str] = {}  # latest call of each kind, in call order
        self._pending: list[tuple[str, Callable | None]] = []  # one-off calls before ready
        self._tiles = "offline"
        self._view: tuple[float, float, float, float, float] | None = None
        self.show_labels = True  # place names where only the offline basemap shows
        self.context_menu: QMenu | None = None  # the last right-click menu (tests use it)
        self.offers_offset = False  # the menu offers "taken here: set the clock" (tracks open)

        self.view = QWebEngineView(self)
        self.view.setAcceptDrops(False)  # dropped photos go to the window, not to the page
        self._page = MapPage(map_profile(), self.view)
        self._filter = RequestFilter(self._page)
        self._filter.set_tile_url(self._tile_url)
        self._page.setUrlRequestInterceptor(self._filter)
        self._configure(self._page.settings())
        self.view.setPage(self._page)

        self._bridge = _Bridge(self)
        self._bridge.loaded.connect(self._on_page_loaded)
        self._bridge.clicked.connect(self.pinClicked)
        self._bridge.moved.connect(self._on_pin_moved)
        self._bridge.context.connect(self._show_context_menu)
        self._bridge.candidate.connect(self.candidateClicked)
        self._bridge.track.connect(
            lambda _track, lat, lon, x, y: self._show_context_menu(lat, lon, x, y)
        )
        self._bridge.tiles.connect(self._on_tiles)
        self._bridge.view.connect(self._on_view)
        _label_notifier().ready.connect(self._push_labels)
        self._channel = QWebChannel(self)
        self._channel.registerObject("bridge", self._bridge)
        self._page.setWebChannel(self._channel)
        self._page.renderProcessTerminated.connect(self._on_render_process_terminated)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self._load()

    @staticmethod
    def _configure(settings: QWebEngineSettings) -> None:
        attr = QWebEngineSettings.WebAttribute
        settings.setAttribute(attr.LocalContentCanAccessFileUrls, True)
        settings.setAttribute(attr.LocalContentCanAccessRemoteUrls, True)  # online tiles
        for off in (
            attr.JavascriptCanOpenWindows,
            attr.NavigateOnDropEnabled,
            attr.PluginsEnabled,
            attr.DnsPrefetchEnabled,
            attr.HyperlinkAuditingEnabled,
            attr.ErrorPageEnabled,
            attr.LocalStorageEnabled,
        ):
            settings.setAttribute(off, False)

    def _load(self) -> None:
        self._ready = False
        self._page.setHtml(page_html(), QUrl.fromLocalFile(str(WEB_DIR) + "/"))

    # ---- the page's side ---------------------------------------------------------------
    def _on_page_loaded(self) -> None:
        self._page.runJavaScript(
            f"locdiff.setBasemap({basemap.basemap_geojson_text()}, "
            f"{json.dumps(basemap.ATTRIBUTION)});",
            0,
        )
        self._page.runJavaScript(self._tile_js(), 0)
        self._ready = True
        for js in self._state.values():
            self._page.runJavaScript(js, 0)
        pending, self._pending = self._pending, []
        for js, callback in pending:
            self._run(js, callback)
        self.ready.emit()

    def _on_render_process_terminated(self, status, exit_code: int) -> None:
        log.warning("map page renderer ended (%s, code %s); reloading", status, exit_code)
        self.reload()

    def reload(self) -> None:
        """Load the page afresh and replay the current state into it (``ready`` fires again)."""
        self._load()

    def _on_pin_moved(self, key: str, lat: float, lon: float) -> None:
        if _finite(lat, lon):
            self.pinMoved.emit(key, lat, lon)

    def _on_tiles(self, state: str) -> None:
        if state == "unreachable" and self._tiles != "unreachable":
            log.warning("map tiles: the server of %s cannot be reached", self._tile_url)
        self._tiles = state
        self.tilesChanged.emit(state)
        self._push_labels()

    # ---- place names -------------------------------------------------------------------
    def _on_view(self, south: float, west: float, north: float, east: float, zoom: float) -> None:
        if _finite(south, west, north, east, zoom):
            self._view = (south, west, north, east, zoom)
            self._push_labels()

    def _push_labels(self) -> None:
        """Label the view's places (built in the background on the first view)."""
        if self._view is None:
            return
        shown = self.show_labels and self._tiles not in ("online", "pack")
        index = _label_notifier().index() if shown else None
        if shown and index is None:
            return  # being built: ready() comes back here
        labels = index.labels(*self._view) if index is not None else []
        rows = [[round(p.lat, 5), round(p.lon, 5), p.name, p.size_class] for p in labels]
        self._push("labels", _js_call("setLabels", rows))

    def _show_context_menu(self, lat: float, lon: float, x: int, y: int) -> None:
        if not _finite(lat, lon):
            return
        menu = QMenu(self)
        where = QAction("Set location here", menu)
        where.setToolTip(f"{lat:.5f}, {lon:.5f}")
        where.triggered.connect(lambda: self.locationRequested.emit(lat, lon))
        copy = QAction(f"Copy coordinates ({lat:.5f}, {lon:.5f})", menu)
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(f"{lat:.6f}, {lon:.6f}"))
        menu.addAction(where)
        if self.offers_offset:
            offset = QAction("Selected photo was taken here: set the camera clock", menu)
            offset.setToolTip("The clock offset that puts the photo here on the track")
            offset.triggered.connect(lambda: self.offsetRequested.emit(lat, lon))
            menu.addAction(offset)
        menu.addAction(copy)
        menu.aboutToHide.connect(menu.deleteLater)
        self.context_menu = menu
        menu.popup(self.view.mapToGlobal(QPoint(x, y)))

    # ---- pushing state -----------------------------------------------------------------
    def _run(self, js: str, callback: Callable[[object], None] | None = None) -> None:
        if not self._ready:
            self._pending.append((js, callback))
        elif callback is None:
            self._page.runJavaScript(js, 0)
        else:
            self._page.runJavaScript(js, 0, callback)

    def _push(self, kind: str, js: str) -> None:
        self._state.pop(kind, None)
        self._state[kind] = js  # the latest call of this kind, moved to the end of the order
        if self._ready:
            self._page.runJavaScript(js, 0)

    def _tile_js(self) -> str:
        attribution = tile_attribution(self._tile_url) if self._tile_url else ""
        return _js_call("setTileUrl", self._tile_url, attribution)

    def is_ready(self) -> bool:
        return self._ready

    def tiles_state(self) -> str:
        """The tiles' state: online once tiles load, offline while only the basemap shows."""
        return self._tiles

    def set_tile_url(self, url: str | None) -> None:
        """None or "" shows the offline basemap only; a failing tile server leaves it showing."""
        self._tile_url = check_tile_url(url)
        self._filter.set_tile_url(self._tile_url)
        if self._ready:
            self._page.runJavaScript(self._tile_js(), 0)

    def set_photos(self, pins: list[PhotoPin]) -> None:
        """Replace all photo pins (one per photo; the kind gives the style). One JS call."""
        rows = [
            [p.key, float(p.lat), float(p.lon), p.kind.value, p.label]
            for p in pins
            if _finite(p.lat, p.lon)
        ]
        self._push("photos", _js_call("setPhotos", rows))

    def set_selection(self, keys: list[str], fit: bool = True) -> None:
        self._push("selection", _js_call("setSelection", list(keys), bool(fit)))

    def set_candidates(
        self, candidates: list[CandidatePin], samples: list[tuple[float, float]]
    ) -> None:
        """The selected photo's candidates (circles sized by probability) and raw samples."""
        cands = [
            [float(c.lat), float(c.lon), float(c.probability), c.label]
            for c in candidates
            if _finite(c.lat, c.lon, c.probability)
        ]
        dots = [[round(float(la), 5), round(float(lo), 5)] for la, lo in samples if _finite(la, lo)]
        self._push("candidates", _js_call("setCandidates", cands, dots))

    def set_tracks(self, lines: list[TrackLine]) -> None:
        """Replace the track lines (hidden ones kept, for the toggles). One JS call."""
        rows = [
            [
                t.track_id,
                t.summary(),
                t.colour,
                bool(t.visible),
                [[[round(la, 6), round(lo, 6)] for la, lo in seg] for seg in t.lines],
            ]
            for t in lines
        ]
        self._push("tracks", _js_call("setTracks", rows))

    def fit_tracks(self, ids: list[int]) -> None:
        """Fit the view to these tracks' lines."""
        self._run(_js_call("fitTracks", [int(i) for i in ids]))

    def set_search_marker(self, lat: float | None, lon: float | None, label: str = "") -> None:
        """Mark a found place (right-clicking it offers "Set location here"); None clears."""
        if lat is None or lon is None or not _finite(lat, lon):
            self._push("search", _js_call("setSearchMarker", None, None, ""))
        else:
            self._push("search", _js_call("setSearchMarker", float(lat), float(lon), label))

    def set_link(self, points: list[tuple[float, float]]) -> None:
        """A dashed line from the file's GPS to the best guess (two points), or none."""
        pts = [[float(la), float(lo)] for la, lo in points if _finite(la, lo)]
        self._push("link", _js_call("setLink", pts if len(pts) == 2 else []))

    def set_samples_visible(self, visible: bool) -> None:
        self._push("samplesVisible", _js_call("setSamplesVisible", bool(visible)))

    def set_density(self, rgba: np.ndarray | None) -> None:
        """An equirectangular (H, W, 4) uint8 world image (row 0 = +90, column 0 = -180) as a
        translucent overlay, or None to clear. Its rows are moved to Web Mercator first."""
        if rgba is None:
            self._push("density", _js_call("setDensity", None, None))
            return
        rgba = np.asarray(rgba)
        if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
            raise ValueError(
                f"set_density needs an (H, W, 4) uint8 RGBA image, got {rgba.dtype} {rgba.shape}: "
                "colour a density grid with app.map.density_colors.density_rgba(grid)"
            )
        url = density_colors.png_data_url(density_colors.to_web_mercator(rgba))
        bounds = [list(corner) for corner in density_colors.OVERLAY_BOUNDS]
        self._push("density", _js_call("setDensity", url, bounds))

    def set_legend(self, spec: dict | None) -> None:
        """The density overlay's colour scale (``app.map.density_colors.legend``), or None."""
        self._push("legend", _js_call("setLegend", spec))

    def set_pack(self, spec: dict | None) -> None:
        """An offline map pack as the basemap (``{name, kind, url, attribution, minZoom,
        maxZoom, bounds}``, its tiles served on 127.0.0.1), or None for the tiles again."""
        self._filter.set_pack_url(spec["url"] if spec else "")
        self._push("pack", _js_call("setPack", spec))

    def set_density_opacity(self, opacity: float) -> None:
        opacity = float(opacity)
        if not math.isfinite(opacity):
            raise ValueError(f"the density opacity must be a number in 0..1, got {opacity}")
        self._push("densityOpacity", _js_call("setDensityOpacity", min(1.0, max(0.0, opacity))))

    def fit_to(self, points: list[tuple[float, float]], offline_zoom: int | None = None) -> None:
        """Fit the view to ``(lat, lon)`` points (a sensible zoom for a single point); without
        online tiles no closer than ``offline_zoom`` (default: what the basemap shows well)."""
        pts = [[float(la), float(lo)] for la, lo in points if _finite(la, lo)]
        if pts:
            self._run(_js_call("fitTo", pts, offline_zoom))

    def evaluate(self, js: str, callback: Callable[[object], None]) -> None:
        """Run JavaScript in the page and pass its result to ``callback`` (queued until ready).

        The result goes through JSON, so objects arrive as dicts and lists (Qt's own conversion
        hands PySide an empty string for them); ``js`` may be statements (the last one's value
        counts). A script that throws, or whose value is not JSON (a Leaflet layer), logs a
        warning and gives ``None``. An exception in ``callback`` goes to ``sys.excepthook``."""

        def parse(text: object) -> None:
            ok, value = json.loads(text) if isinstance(text, str) and text else (False, text)
            if not ok:
                log.warning("map page: evaluate(%.80r) failed: %s", js, value)
                value = None
            try:
                callback(value)
            except Exception:  # raised into Qt's callback, PySide would crash the process
                sys.excepthook(*sys.exc_info())

        self._run(_EVALUATE_JS % json.dumps(js), parse)
