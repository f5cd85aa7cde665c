"""Photos coming into the session: files and folders opened or dropped, walked in the background
(:class:`app.workers.loaders.PhotoFinder`) so that photos appear in the list as they are found,
and the EXIF GPS of each read in the background (:class:`app.workers.loaders.ExifReader`), again
after a write changed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject

from app.model.geotagging import is_track_file
from app.model.session import Session
from app.session_views import SessionViews
from app.widgets.dialogs import Prompts
from app.widgets.photo_list import PhotoListView
from app.workers.loaders import ExifReader, ExifResult, PhotoFinder


class IntakeHost(Protocol):
    """What adding photos needs of the window."""

    session: Session
    prompts: Prompts
    photo_list: PhotoListView
    views: SessionViews

    def notify(self, text: str) -> None: ...

    def open_track_files(self, paths: Sequence[str | Path]) -> object: ...


class PhotoIntake(QObject):
    """The finder and the EXIF reader of one window, and what they deliver to its session."""

    def __init__(self, window: IntakeHost, parent: QObject) -> None:
        super().__init__(parent)
        self.w = window
        self.finder = PhotoFinder(self)
        self.finder.found.connect(self._found)
        self.finder.finished.connect(self._find_finished)
        self._added: dict[int, int] = {}  # finder request -> new photos so far
        self.exif_reader = ExifReader(self)
        self.exif_reader.read.connect(self._exif_read)

    @property
    def idle(self) -> bool:
        """Every request has been walked and every EXIF asked for has been read."""
        return self.finder.idle and self.exif_reader.idle

    def add_paths(self, paths: Iterable[str | Path]) -> int:
        """Add photos and folders (recursive), duplicates ignored; GPS track files among them
        are opened as tracks. Folders are walked in the background and their photos appear as
        they are found; returns the request's number, 0 for no photo paths (``finder.idle``
        tells when every request has arrived)."""
        paths = list(paths)
        tracks = [p for p in paths if is_track_file(str(p)) and Path(p).is_file()]
        if tracks:
            self.w.open_track_files(tracks)
            paths = [p for p in paths if p not in tracks]
        if not paths:
            return 0
        request = self.finder.request(paths)
        if request:
            self._added[request] = 0
        return request

    def open_photos(self) -> None:
        self.add_paths(self.w.prompts.open_photos())

    def open_folder(self) -> None:
        folder = self.w.prompts.open_folder()
        if folder:
            self.add_paths([folder])

    def reread_exif(self, keys: Iterable[str]) -> None:
        photos = [self.w.session.photo(k) for k in keys]
        self.exif_reader.request([(p.key, str(p.path)) for p in photos if p is not None])

    def _found(self, request: int, found: list) -> None:
        if self.finder.stopped:  # delivered after shutdown: the window is closing
            return
        new = self.w.session.add_found(found)
        self.exif_reader.request([(p.key, str(p.path)) for p in new])
        self._added[request] = self._added.get(request, 0) + len(new)
        if new and not self.w.views.selected:
            self.w.photo_list.select_keys([new[0].key])

    def _find_finished(self, request: int, count: int) -> None:
        added = self._added.pop(request, 0)
        if added:
            self.w.notify(f"added {added} photo{'s' * (added != 1)}")
        elif count:
            self.w.notify("no new photos: they are all in the list already")
        else:
            self.w.notify("no photos found there")

    def _exif_read(self, results: list[ExifResult]) -> None:
        for r in results:
            self.w.session.set_exif(
                r.key,
                r.position,
                error=r.error,
                unusable=r.unusable,
                alt=r.alt,
                capture=r.capture,
            )
