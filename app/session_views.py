"""The views beside the photo list, kept in step with the session and the selection: the map's
pins and selection, the details of the current photo, place names and the status-bar counts.

A session listener: changes are gathered and pushed at most every :data:`REFRESH_MS`, and the
pins at most every :data:`PINS_MS` (:data:`PINS_BUSY_MS` while predicting), so a thousand results
do not mean a thousand redraws. The selection (the photo list's, or a pin's) is kept here: it
decides what the details show and when the map fits the selected pins.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel

from app.edit_history import EditHistory
from app.map.map_panel import MapPanel
from app.model.photo import PhotoState
from app.model.session import Session, place_key
from app.widgets.details_panel import DetailsPanel
from app.widgets.photo_list import PhotoListView
from app.workers.loaders import PlaceNamer
from app.workers.prediction import PredictionController

REFRESH_MS = 100
PINS_MS = 300  # the map redraws every pin on a push: at most this often
PINS_BUSY_MS = 3000  # and this often while predicting (the list shows each at once)


class ViewsHost(Protocol):
    """What the views need of the window."""

    session: Session
    edits: EditHistory
    predictor: PredictionController
    photo_list: PhotoListView
    map_panel: MapPanel
    details: DetailsPanel
    places: PlaceNamer
    counts: QLabel

    def notify(self, text: str) -> None: ...


class SessionViews(QObject):
    """The selection, and the map, details and counts of one window's session; connects itself
    to the photo list's selection and the map's pins."""

    def __init__(self, window: ViewsHost, parent: QObject) -> None:
        super().__init__(parent)
        self.w = window
        self.map = window.map_panel.map
        self.selected: list[str] = []
        self.current: str | None = None
        self._changed_rows: set[int] | None = set()
        self._asked_places: set[tuple[float, float]] = set()
        self._fit_next = True  # the next selection change fits the map (not after a pin click)
        self._fit_pending = False  # the selection was fitted before any of it had a pin
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        self._pins: list = []  # what the map shows
        self._pins_pushed_at = 0.0
        self._pins_timer = QTimer(self, singleShot=True)
        self._pins_timer.timeout.connect(self._push_pins)
        window.photo_list.selection_changed.connect(self._selection_changed)
        self.map.pinClicked.connect(self._pin_clicked)
        self.map.pinMoved.connect(self._pin_moved)
        self.map.locationRequested.connect(self._location_requested)

    @property
    def idle(self) -> bool:
        """No refresh pending: the views show the session as it is."""
        return not self._refresh_timer.isActive() and not self._pins_timer.isActive()

    def stop(self) -> None:
        """Push nothing more (the window is closing)."""
        self._refresh_timer.stop()
        self._pins_timer.stop()
        if self in self.w.session.listeners:
            self.w.session.listeners.remove(self)

    # -- session listener: gather changes, push them to map, details and status ----------------
    def photos_about_to_be_added(self, first: int, last: int) -> None:
        pass

    def photos_added(self) -> None:
        self._changed_rows = None
        self._refresh_timer.start()

    def photos_changed(self, rows: Sequence[int] | None) -> None:
        if rows is None:
            self._changed_rows = None
        elif self._changed_rows is not None:
            self._changed_rows.update(rows)
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def photos_about_to_be_reset(self) -> None:
        pass

    def photos_reset(self) -> None:
        self.photos_added()

    def _refresh(self) -> None:
        session = self.w.session
        rows, self._changed_rows = self._changed_rows, set()
        photos = (
            session.photos
            if rows is None
            else [session.photos[r] for r in rows if r < len(session)]
        )
        self._ask_places(photos)
        self._push_pins()
        current = None if self.current is None else session.photo(self.current)
        if current is not None and (rows is None or session.row_of(current.key) in rows):
            self.w.details.refresh()
            self.w.map_panel.show_photo(self.current)
        self._show_counts()

    def _push_pins(self) -> None:
        """Send the pins to the map when they changed, at most every :data:`PINS_MS`, or
        :data:`PINS_BUSY_MS` while predicting: the page redraws every pin on a push, and with
        the offscreen compositor that drawing stalled the window by 100-250 ms (measured)."""
        interval = PINS_BUSY_MS if self.w.predictor.busy else PINS_MS
        wait = interval / 1000 - (time.monotonic() - self._pins_pushed_at)
        if wait > 0:
            if not self._pins_timer.isActive():
                self._pins_timer.start(max(1, round(wait * 1000)))
            return
        pins = self.w.session.pins()
        if pins != self._pins:
            self._pins, self._pins_pushed_at = pins, time.monotonic()
            self.map.set_photos(pins)
            if self._fit_pending and any(p.key in self.selected for p in pins):
                self._fit_pending = False  # the selection's pins arrived after it: fit now
                self.map.set_selection(self.selected, fit=True)

    def _ask_places(self, photos) -> None:
        todo = [
            p
            for p in self.w.session.unnamed_points(photos)
            if place_key(*p) not in self._asked_places
        ]
        self._asked_places.update(place_key(*p) for p in todo)
        self.w.places.request(todo)

    def _show_counts(self) -> None:
        states = [p.state for p in self.w.session.photos]
        parts = [f"{len(states)} photos"]
        for state, name in (
            (PhotoState.EXIF, "with EXIF"),
            (PhotoState.PROPOSED, "from tracks"),
            (PhotoState.PREDICTED, "predicted"),
            (PhotoState.CONFIRMED, "confirmed"),
            (PhotoState.ERROR, "error" if states.count(PhotoState.ERROR) == 1 else "errors"),
        ):
            count = states.count(state)
            if count:
                parts.append(f"{count} {name}")
        self.w.counts.setText(" · ".join(parts))

    # -- selection and the map ------------------------------------------------------------------
    def _selection_changed(self, keys: list[str], current: str | None) -> None:
        self.selected, self.current = keys, current
        fit, self._fit_next = self._fit_next, True
        self.w.details.show_photo(current, len(keys))
        self.map.set_selection(keys, fit=fit)
        located = {p.key for p in self._pins}
        self._fit_pending = fit and not any(k in located for k in keys)
        self.w.map_panel.show_photo(current)

    def _pin_clicked(self, key: str) -> None:
        self._fit_next = False  # the user is looking at that pin: do not move the map
        self.w.photo_list.select_keys([key])

    def _pin_moved(self, key: str, lat: float, lon: float) -> None:
        photo = self.w.session.photo(key)
        if photo is not None:
            with self.w.edits.edit(f"Move {photo.name}", [key]):
                self.w.session.confirm(key, lat, lon)

    def _location_requested(self, lat: float, lon: float) -> None:
        if self.current is None:
            self.w.notify("select a photo first, then right-click the map to set its location")
            return
        photo = self.w.session.photo(self.current)
        if photo is not None:
            with self.w.edits.edit(f"Set location of {photo.name}", [self.current]):
                self.w.session.confirm(self.current, lat, lon)
