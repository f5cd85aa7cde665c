"""Geotagging by time in the window: open GPS tracks, the camera's clock, proposed places, and
the time-aware guesses, kept in step with the session.

Tracks are read in the background (:func:`app.workers.geotagging.read_tracks`), drawn on the
map with a toggle each in the tracks panel, and matched against the session's photos whenever
the photos, the tracks or the panel's settings change (coalesced every :data:`MATCH_MS`; a
thousand photos match in milliseconds, so the pins follow the offset as it is typed). The
proposals are only proposals: accepting makes them confirmed locations, written by the usual
write path. Photos with a prediction and placed neighbours in time get a time-aware guess
(:func:`locdiff_core.time_fusion.fuse`), computed on a pool thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QTimer

from app.edit_history import EditHistory
from app.map.map_panel import MapPanel
from app.model.geotagging import TRACK_COLOURS, GeotagOptions, TrackLine
from app.model.session import Session
from app.widgets.dialogs import Prompts
from app.widgets.tracks_panel import TracksPanel
from app.workers.geotagging import (
    fusion_jobs,
    offset_from_photo,
    propose_places,
    read_tracks,
    time_guesses,
    time_settings,
    track_line,
)
from app.workers.loaders import Task, TaskSet
from locdiff_core.photo.tracks import Track
from locdiff_core.time_fusion import TimePrior

MATCH_MS = 120
FUSE_MS = 400


class GeotagHost(Protocol):
    """What geotagging by time needs of the window."""

    session: Session
    edits: EditHistory
    prompts: Prompts
    tasks: TaskSet
    map_panel: MapPanel
    tracks_panel: TracksPanel

    @property
    def _current(self) -> str | None: ...

    def notify(self, text: str) -> None: ...

    def report_failure(self, title: str, message: str) -> None: ...


class TrackGeotag(QObject):
    """The open tracks of one window and what they propose; a listener of its session."""

    def __init__(self, window: GeotagHost, parent: QObject) -> None:
        super().__init__(parent)
        self.w = window
        self.map = window.map_panel.map
        self.panel = window.tracks_panel
        self.tracks: dict[int, Track] = {}
        self.lines: dict[int, TrackLine] = {}
        self._next_id = 1
        self.asked = False  # the user asked to match by time (without a track: photos with GPS)
        self._applying = False  # our own changes to the session do not start a new match
        self._fusion: Task | None = None
        self._fused: object = None  # what the last fusion was asked (skip asking it again)
        self._match_timer = QTimer(self, singleShot=True, interval=MATCH_MS)
        self._match_timer.timeout.connect(self.rematch)
        self._fuse_timer = QTimer(self, singleShot=True, interval=FUSE_MS)
        self._fuse_timer.timeout.connect(self._fuse)
        self.panel.options_changed.connect(lambda _options: self.rematch())
        self.panel.track_toggled.connect(self.toggle)
        self.panel.remove_requested.connect(self.remove)
        self.panel.fit_requested.connect(self.map.fit_tracks)
        self.panel.open_requested.connect(self.open_dialog)
        self.panel.accept_all_requested.connect(self.accept_all)
        self.panel.offset_from_photo_requested.connect(self.offset_from_selected)
        self.map.offsetRequested.connect(self.offset_at)
        self.panel.setVisible(False)
        window.session.listeners.append(self)

    @property
    def options(self) -> GeotagOptions:
        return self.panel.options

    @property
    def active(self) -> bool:
        """Proposals are made: a track is open, or the user asked to match by time."""
        return bool(self.tracks) or self.asked

    @property
    def idle(self) -> bool:
        return not (self._match_timer.isActive() or self._fuse_timer.isActive() or self._fusion)

    def visible_tracks(self) -> list[Track]:
        return [t for i, t in self.tracks.items() if self.lines[i].visible]

    def stop(self) -> None:
        self._match_timer.stop()
        self._fuse_timer.stop()
        if self in self.w.session.listeners:
            self.w.session.listeners.remove(self)

    # -- tracks -------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        paths = self.w.prompts.open_tracks()
        if paths:
            self.open(paths)

    def start_matching(self) -> None:
        """Match by time with what is open (photos with GPS as a track, at least)."""
        self.asked = True
        self.panel.setVisible(True)
        self.rematch()

    def open(self, paths: Sequence[str | Path]) -> Task:
        """Read these track files in the background; each bad one is reported by name."""
        self.w.notify(f"reading {len(paths)} track file{'s' * (len(paths) != 1)}…")
        return self.w.tasks.start(
            lambda progress, cancelled: read_tracks(paths, progress, cancelled),
            self._read,
            lambda message: self.w.report_failure("Open track", message),
        )

    def _read(self, results) -> None:
        added, problems = [], []
        for path, track, problem in results:
            if track is None:
                problems.append(problem)
                continue
            if any(Path(line.path) == path for line in self.lines.values()):
                problems.append(f"{path}: already open")
                continue
            track_id, self._next_id = self._next_id, self._next_id + 1
            colour = TRACK_COLOURS[(track_id - 1) % len(TRACK_COLOURS)]
            self.tracks[track_id] = track
            self.lines[track_id] = track_line(track, track_id, colour)
            added.append(track_id)
        if added:
            self.panel.setVisible(True)
            self._show_tracks()
            self.map.fit_tracks(added)
            fixes = sum(self.lines[i].fixes for i in added)
            self.w.notify(f"opened {len(added)} track{'s' * (len(added) != 1)} ({fixes:,} fixes)")
            self.rematch()
        if problems:
            self.w.report_failure("Open track", "\n".join(problems))

    def toggle(self, track_id: int, visible: bool) -> None:
        line = self.lines.get(track_id)
        if line is not None and line.visible != visible:
            self.lines[track_id] = dataclasses.replace(line, visible=visible)
            self._show_tracks()
            self.rematch()

    def remove(self, ids: Iterable[int]) -> None:
        for track_id in list(ids):
            self.tracks.pop(track_id, None)
            self.lines.pop(track_id, None)
        self._show_tracks()
        self.rematch()

    def _show_tracks(self) -> None:
        lines = list(self.lines.values())
        self.panel.show_tracks(lines)
        self.map.set_tracks(lines)
        self.map.offers_offset = bool(lines)

    # -- matching -----------------------------------------------------------------------------
    def rematch(self) -> None:
        """Match the photos now (and ask for the time-aware guesses after)."""
        self._match_timer.stop()
        session = self.w.session
        if self.active:
            places, notes, summary = propose_places(
                session.photos, self.visible_tracks(), self.options
            )
            self.panel.show_summary(summary.text(), summary.zone, summary.zone_source)
            self.panel.accept_button.setEnabled(summary.placed > 0)
        else:
            places, notes = {}, {}
        self._applying = True
        try:
            session.set_proposals(places, notes)
        finally:
            self._applying = False
        self._fuse_timer.start()

    def accept_all(self) -> None:
        keys = [p.key for p in self.w.session.photos if p.proposed and p.confirmed is None]
        with self.w.edits.edit(f"Accept {len(keys)} from tracks", keys):
            done = self.w.session.accept_proposed(keys)
        if done:
            self.w.notify(
                f"accepted {len(done)} place{'s' * (len(done) != 1)} from tracks: "
                "Write locations to photos to save them"
            )
        else:
            self.w.notify("no place from a track to accept")

    # -- the clock from a photo put where it was taken -------------------------------------------
    def offset_from_selected(self) -> None:
        photo = None if self.w._current is None else self.w.session.photo(self.w._current)
        if photo is None:
            self.w.notify("select the photo whose place you know first")
        elif photo.confirmed is None:
            self.w.notify(
                f"drag {photo.name}'s pin to where it was taken on the track (or right-click "
                "the track there), then ask again"
            )
        else:
            self.offset_at(*photo.confirmed)

    def offset_at(self, lat: float, lon: float) -> None:
        """Set the camera clock so that the selected photo was taken where the tracks passed
        ``(lat, lon)``."""
        key = self.w._current
        photo = None if key is None else self.w.session.photo(key)
        if photo is None:
            self.w.notify("select the photo whose place you know first")
            return
        settings, _how = time_settings(self.w.session.photos, self.visible_tracks(), self.options)
        try:
            offset, text = offset_from_photo(photo, lat, lon, self.visible_tracks(), settings)
        except ValueError as exc:
            self.w.report_failure("Clock from a photo", str(exc))
            return
        self.panel.set_offset(offset)
        self.w.notify(text)

    # -- time-aware guesses ---------------------------------------------------------------------
    def _fuse(self) -> None:
        if self._fusion is not None:  # one at a time; ask again once it is back
            self._fuse_timer.start()
            return
        photos = self.w.session.photos
        settings, _how = time_settings(photos, self.visible_tracks(), self.options)
        prior = TimePrior(max_speed_kmh=self.options.max_speed_kmh)
        jobs, none = fusion_jobs(photos, settings, prior.window_s)
        asked = (prior, [(j.key, id(j.density), j.neighbours) for j in jobs], none)
        if asked == self._fused:
            return
        self._fused = asked
        clear = dict.fromkeys(none)
        if not jobs:
            self._apply_guesses(clear)
            return
        self._fusion = self.w.tasks.start(
            lambda _progress, cancelled: time_guesses(jobs, prior, cancelled),
            lambda guesses: self._fused_back(clear | guesses),
            self._fusion_failed,
        )

    def _fused_back(self, guesses) -> None:
        self._fusion = None
        self._apply_guesses(guesses)

    def _fusion_failed(self, message: str) -> None:
        self._fusion = None
        self.w.notify(f"time-aware guesses failed: {message}")

    def _apply_guesses(self, guesses) -> None:
        self._applying = True
        try:
            self.w.session.set_time_guesses(guesses)
        finally:
            self._applying = False

    # -- session listener ------------------------------------------------------------------------
    def _photos_moved(self, *_args) -> None:
        if not self._applying:
            self._match_timer.start()

    photos_added = photos_reset = _photos_moved

    def photos_changed(self, rows) -> None:
        self._photos_moved()

    def photos_about_to_be_added(self, first: int, last: int) -> None:
        pass

    def photos_about_to_be_reset(self) -> None:
        pass
