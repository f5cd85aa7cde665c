"""The window's session kept on disk (:class:`app.model.session_store.SessionStore`): saved a
moment after every change (at most every :data:`SAVE_MS`, so a crash loses at most that much),
on quit, and restored on the next start; *File > Open session* and *Save session as* move it
between files. Quitting with confirmed locations not yet written asks what to do with them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QLockFile, QObject, QTimer

from app.model.session import Session
from app.model.session_store import SessionStore, StoredPhoto, session_problem
from app.model.settings import default_session_path
from app.widgets.dialogs import Prompts
from app.widgets.photo_list import PhotoListView
from app.widgets.tracks_panel import TracksPanel

SAVE_MS = 1000


class KeeperHost(Protocol):
    """What keeping the session needs of the window."""

    session: Session
    prompts: Prompts
    photo_list: PhotoListView
    tracks_panel: TracksPanel

    def notify(self, text: str) -> None: ...

    def reread_exif(self, keys: Sequence[str]) -> None: ...

    def open_track_files(self, paths: Sequence[str | Path]) -> object: ...

    def open_track_paths(self) -> list[str]: ...


def unwritten(session: Session) -> list[str]:
    """Photos whose confirmed location is not what was last written into them."""
    return [
        p.key
        for p in session.photos
        if p.confirmed is not None and (p.written is None or p.written[0] != p.confirmed)
    ]


class SessionKeeper(QObject):
    """Saves one window's session as it changes; a listener of the session."""

    def __init__(self, window: KeeperHost, parent: QObject, path: Path | None = None) -> None:
        super().__init__(parent)
        self.w = window
        self.store: SessionStore | None = None
        self._lock: QLockFile | None = None
        self._dirty: set[str] | None = set()  # keys to write; None: every row
        self._timer = QTimer(self, singleShot=True, interval=SAVE_MS)
        self._timer.timeout.connect(self.save)
        self.open(path or default_session_path(), restore=True)
        window.session.listeners.append(self)

    # -- files ------------------------------------------------------------------------------
    def open(self, path: Path, restore: bool) -> bool:
        """Keep the session in ``path`` from now on (restoring what it holds when ``restore``);
        False, with a message, when it cannot be used (the work is then kept in memory only)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.w.notify(f"the session cannot be kept in {path.parent}: {exc}")
            return False
        lock = QLockFile(str(path) + ".lock")
        lock.setStaleLockTime(0)  # held for as long as the window keeps the session
        if not lock.tryLock(0):
            self.w.notify(
                f"{path} is kept by another LocDiff Studio window: this window's work is not "
                "saved (File > Save session as keeps it elsewhere)"
            )
            return False
        try:
            store = SessionStore(path)
        except (ValueError, OSError) as exc:
            lock.unlock()
            self.w.notify(f"the session cannot be kept: {exc}")
            return False
        self._release()
        self.store, self._lock = store, lock
        if restore:
            self._restore()
        self._dirty = None
        self._timer.start()
        return True

    def save_as(self, target: str | Path) -> None:
        """Copy the session to ``target`` and keep it there from now on."""
        target = Path(target)
        if self.store is None:
            self.w.notify("the session is not kept on disk: nothing to save")
            return
        self.save()
        try:
            self.store.copy_to(target)
        except Exception as exc:  # OSError, or sqlite3.Error (not an OSError)
            self.w.notify(f"the session could not be saved to {target}: {session_problem(exc)}")
            return
        self.open(target, restore=False)
        self.w.notify(f"session saved as {target}")

    def open_file(self, path: str | Path) -> None:
        """Replace the open photos by the session in ``path`` (the current one is saved first
        and opened again if ``path`` cannot be)."""
        before = None if self.store is None else self.store.path
        self._release()  # saved and closed: emptying the window below does not touch it
        self.w.session.remove(self.w.session.keys())
        if self.open(Path(path), restore=True):
            self.w.notify(f"opened session {path}")
        elif before is not None:
            self.open(before, restore=True)

    # -- saving -----------------------------------------------------------------------------
    def save(self) -> None:
        """Write what changed since the last save (one transaction)."""
        self._timer.stop()
        if self.store is None:
            return
        dirty, self._dirty = self._dirty, set()
        try:
            self.store.save(self.w.session.photos, dirty)
            self.store.put(self._settings())
        except Exception as exc:  # sqlite3.Error (disk full, locked): say so, keep working
            self._dirty = None
            self.w.notify(f"the session could not be saved: {session_problem(exc)}")

    def _settings(self) -> dict[str, str]:
        panel, view = self.w.tracks_panel, self.w.photo_list
        return {
            "filter": view.filter_box.currentText(),
            "search": view.search.text(),
            "tracks": json.dumps(self.w.open_track_paths()),
            "clock_offset": panel.offset.text(),
            "zone": panel.options.zone,
            "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def _restore(self) -> None:
        stored = self.store.load()
        if stored:
            self._add(stored)
        view, panel = self.w.photo_list, self.w.tracks_panel
        view.filter_box.setCurrentText(self.store.get("filter", view.filter_box.currentText()))
        view.search.setText(self.store.get("search", ""))
        if self.store.get("zone"):
            panel.zone.setEditText(self.store.get("zone"))
        panel.offset.setText(self.store.get("clock_offset", panel.offset.text()))
        tracks = [p for p in json.loads(self.store.get("tracks", "[]")) if Path(p).is_file()]
        if tracks:
            self.w.open_track_files(tracks)

    def _add(self, stored: list[StoredPhoto]) -> None:
        session = self.w.session
        session.add_found((s.path, s.key) for s in stored)
        session.restore_confirmed(
            {s.key: (s.confirmed, s.confirmed_alt, s.confirmed_from) for s in stored}
        )
        for s in stored:
            photo = session.photo(s.key)
            photo.written = s.written
            if s.prediction is not None:
                session.set_prediction(s.key, s.prediction)
        self.w.reread_exif([s.key for s in stored])
        pending = len(unwritten(session))
        text = f"restored {len(stored)} photo{'s' * (len(stored) != 1)} from the last session"
        self.w.notify(text + (f" ({pending} confirmed, not yet written)" if pending else ""))

    # -- session listener ---------------------------------------------------------------------
    def _mark(self, keys: Sequence[str] | None) -> None:
        if keys is None:
            self._dirty = None
        elif self._dirty is not None:
            self._dirty.update(keys)
        if not self._timer.isActive():
            self._timer.start()

    def photos_added(self) -> None:
        self._mark(None)

    def photos_reset(self) -> None:
        self._mark([])  # the order and the set of photos: written by every save

    def photos_changed(self, rows) -> None:
        session = self.w.session
        if rows is None:
            self._mark(None)
        else:
            self._mark([session.photos[r].key for r in rows if r < len(session)])

    def photos_about_to_be_added(self, first: int, last: int) -> None:
        pass

    def photos_about_to_be_reset(self) -> None:
        pass

    def stop(self) -> None:
        """Save now and keep nothing more (the window is closing)."""
        self.save()
        if self in self.w.session.listeners:
            self.w.session.listeners.remove(self)
        self._release()

    def _release(self) -> None:
        if self.store is not None:
            self.save()
            self.store.close()
            self.store = None
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None
