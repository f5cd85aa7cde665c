"""Which of the window's actions can act now: each is enabled only then, and a disabled one's
tooltip says why ("select photos first", "no model to predict with: ..."). Checked a moment
after the session or the selection changes (coalesced, :data:`CHECK_MS`; a write and an undo
note each photo, so the write journal is looked at then) and every :data:`POLL_MS` for what has
no signal of its own (a prediction running, the model's state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAction

from app.current_model import CurrentModel
from app.map_packs import MapPacks
from app.model.session import Session
from app.widgets.photo_list import PhotoListView
from app.workers.prediction import PredictionController
from app.workers.writeback import journal_root

CHECK_MS = 100
POLL_MS = 500
SELECT_FIRST = "select photos first"
# What changes without a session signal (a write or an undo notes each photo: that one does).
POLLED = ("cancel_prediction", "predict_selected", "predict_all", "close_map_pack")


class StatesHost(Protocol):
    session: Session
    photo_list: PhotoListView
    predictor: PredictionController
    current_model: CurrentModel
    menu_actions: dict[str, QAction]
    packs: MapPacks

    @property
    def _selected(self) -> list[str]: ...


class ActionStates(QObject):
    """Keeps the window's actions enabled or disabled, with the reason in the tooltip."""

    def __init__(self, window: StatesHost, parent: QObject) -> None:
        super().__init__(parent)
        self.w = window
        self._tips = {name: a.toolTip() for name, a in window.menu_actions.items()}
        self._rules: dict[str, Callable[[], str | None]] = {
            "predict_selected": lambda: self._need_selection() or self._refusal(),
            "predict_all": lambda: self._need_photos() or self._refusal(),
            "cancel_prediction": lambda: (
                None if self.w.predictor.busy else "no prediction is running"
            ),
            "close_map_pack": lambda: (
                None if self.w.packs.pack is not None else "no map pack is open"
            ),
            "accept_best": lambda: self._need(
                lambda p: p.prediction is not None or p.proposed is not None,
                "the selection has no guess or place from a track to accept",
            ),
            "accept_all_proposed": lambda: (
                None
                if any(p.proposed and p.confirmed is None for p in self.w.session.photos)
                else "no place from a track to accept"
            ),
            "set_coordinates": self._need_selection,
            "remove_selected": self._need_selection,
            "clear_confirmation": lambda: self._need(
                lambda p: p.confirmed is not None, "the selection has no confirmed location"
            ),
            "export_selected": lambda: self._need(
                lambda p: p.location() is not None, "the selection has no location to export"
            ),
            "export_all": lambda: (
                None
                if any(p.location() is not None for p in self.w.session.photos)
                else "no photo has a location yet"
            ),
            "write_selected": lambda: self._need(
                lambda p: p.confirmed is not None,
                "confirm locations first: accept, drag a pin or set coordinates",
            ),
            "write_all": lambda: (
                None
                if any(p.confirmed is not None for p in self.w.session.photos)
                else "no confirmed location to write yet"
            ),
            "undo_write": lambda: (
                None
                if journal_root().is_dir() and any(journal_root().iterdir())
                else "no write of GPS positions to undo"
            ),
        }
        self._timer = QTimer(self, singleShot=True, interval=CHECK_MS)
        self._timer.timeout.connect(self.check)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(lambda: self.check(POLLED))
        self._poll.start()
        window.photo_list.selection_changed.connect(lambda *_: self._timer.start())
        window.session.listeners.append(self)
        self.check()

    def reason(self, name: str) -> str | None:
        """Why action ``name`` cannot act now (None: it can)."""
        rule = self._rules.get(name)
        return None if rule is None else rule()

    def check(self, names: tuple[str, ...] | None = None) -> None:
        """Enable or disable the actions ``names`` (None: all) as their rules say."""
        for name in names or tuple(self._rules):
            action = self.w.menu_actions[name]
            why = self._rules[name]()
            if action.isEnabled() != (why is None):
                action.setEnabled(why is None)
            tip = self._tips[name] if why is None else f"{self._tips[name]} (not now: {why})"
            if action.toolTip() != tip:
                action.setToolTip(tip)
                action.setStatusTip(tip)

    def stop(self) -> None:
        self._timer.stop()
        self._poll.stop()
        if self in self.w.session.listeners:
            self.w.session.listeners.remove(self)

    # -- the rules' parts -------------------------------------------------------------------
    def _selection(self):
        photos = (self.w.session.photo(k) for k in self.w._selected)
        return [p for p in photos if p is not None]

    def _need_selection(self) -> str | None:
        return None if self.w._selected else SELECT_FIRST

    def _need_photos(self) -> str | None:
        return None if len(self.w.session) else "add photos first: drop them on the window"

    def _need(self, test, why: str) -> str | None:
        selection = self._selection()
        if not selection:
            return SELECT_FIRST
        return None if any(test(p) for p in selection) else why

    def _refusal(self) -> str | None:
        return self.w.current_model.refusal()

    # -- session listener -------------------------------------------------------------------
    def _changed(self, *_args) -> None:
        if not self._timer.isActive():
            self._timer.start()

    photos_added = photos_reset = photos_changed = _changed

    def photos_about_to_be_added(self, first: int, last: int) -> None:
        pass

    def photos_about_to_be_reset(self) -> None:
        pass
