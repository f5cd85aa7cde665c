"""Background reading for the photo list: finding photos, thumbnails, EXIF positions and
place names.

Each loader owns a ``QThreadPool`` and reports with signals, which Qt delivers in the window's
thread. Thumbnails are asked for lazily (only rows the view paints) and the newest request runs
first, so scrolling through thousands of photos shows the rows on screen soonest; EXIF is read
for every photo, in chunks, one chunk at a time, so reading a large folder leaves a core free.
The work itself is :mod:`locdiff_core.photo` (decoding, GPS, place names); a bad file becomes a
message, never an exception. :class:`Task` runs any plain function the same way (GPS writes,
undo, downloads).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from app.model.coordinates import LatLon
from app.model.session import identify
from app.workers.background import LOW, lower_this_thread
from locdiff_core.photo import PhotoErrorKind, read_gps, thumbnail
from locdiff_core.photo.errors import call_for_file, os_error
from locdiff_core.photo.geocode import reverse_geocode
from locdiff_core.photo.photo_time import CaptureTime, read_capture_time
from locdiff_core.photo.reading import iter_photos

THUMB_BATCH = 6  # thumbnails per pool job
EXIF_CHUNK = 16  # results per delivery: small enough that the window handles one in a few ms
FIND_CHUNK = 64  # photos found per delivery (fewer every FIND_EVERY_S): about 10 ms of list work
FIND_EVERY_S = 0.1
# A GPS read that fails with these kinds means the file itself cannot be used.
UNUSABLE = frozenset(
    {
        PhotoErrorKind.NOT_FOUND,
        PhotoErrorKind.UNREADABLE,
        PhotoErrorKind.NOT_AN_IMAGE,
        PhotoErrorKind.SPECIAL_FILE,
        PhotoErrorKind.UNSUPPORTED,
        PhotoErrorKind.TOO_LARGE,
    }
)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], None]) -> None:
        super().__init__()
        self._fn = fn

    def run(self) -> None:
        lower_this_thread()
        self._fn()


class _Loader(QObject):
    """A loader with its own low-priority pool of ``threads`` threads, which the window can
    stop: once stopped (the window is closing, its pools drained), a request that still
    arrives, from a queued signal or a timer, starts nothing, so no job outlives the objects it
    reports to."""

    def __init__(self, threads: int = 1, parent=None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setThreadPriority(LOW)
        self.pool.setMaxThreadCount(threads)
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def pil_to_qimage(img) -> QImage:
    """An RGB PIL image as a QImage that owns its pixels (safe to build off the GUI thread)."""
    rgb = img.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


class ThumbnailLoader(_Loader):
    """Thumbnails of ``size`` pixels, newest request first; each key is loaded once at a time."""

    loaded = Signal(str, QImage)  # key, thumbnail
    failed = Signal(str, str)  # key, reason
    _result = Signal(str, object)  # key, QImage or reason (from the pool thread)

    def __init__(self, size: int = 64, threads: int = 2, parent=None) -> None:
        super().__init__(threads, parent)
        self.size = size
        self._pending: set[str] = set()  # touched in the window's thread only
        self._order = itertools.count()
        self._result.connect(self._deliver)

    def request(self, items: Sequence[tuple[str, str]]) -> None:
        """Load the thumbnails of ``items`` ((key, path) pairs) not already loading, a few per
        job: starting a job costs the window a GIL hand-over, so one per photo would not do."""
        if self.stopped:
            return
        todo = [(k, p) for k, p in items if k not in self._pending]
        self._pending.update(k for k, _ in todo)
        for start in range(0, len(todo), THUMB_BATCH):
            batch = todo[start : start + THUMB_BATCH]
            self.pool.start(_Job(lambda b=batch: self._load_batch(b)), next(self._order))

    def _load_batch(self, batch: list[tuple[str, str]]) -> None:
        for key, path in batch:
            self._result.emit(key, self._load(path))

    def _load(self, path: str) -> QImage | str:
        result = call_for_file(Path(path), lambda p: pil_to_qimage(thumbnail(p, self.size)))
        return result.value if result.ok else result.error.message

    def _deliver(self, key: str, result: QImage | str) -> None:
        self._pending.discard(key)
        if isinstance(result, QImage):
            self.loaded.emit(key, result)
        else:
            self.failed.emit(key, result)

    @property
    def idle(self) -> bool:
        return not self._pending


@dataclass(frozen=True)
class ExifResult:
    key: str
    position: LatLon | None
    error: str | None = None
    unusable: bool = False  # the error means the file cannot be used at all
    alt: float | None = None  # metres, with the position
    capture: CaptureTime | None = None  # when it was taken, as the camera says


def read_exif(key: str, path: str) -> ExifResult:
    """The GPS position and capture time of one photo as an :class:`ExifResult` (never raises
    for the file). A capture time that cannot be read is left out: the photo is still usable."""
    result = call_for_file(Path(path), read_gps)  # an OSError is UNREADABLE: unusable
    if not result.ok:
        return ExifResult(key, None, result.error.message, result.error.kind in UNUSABLE)
    fix = result.value
    capture = call_for_file(Path(path), read_capture_time)
    return ExifResult(
        key,
        None if fix is None else (fix.lat, fix.lon),
        alt=None if fix is None else fix.alt,
        capture=capture.value if capture.ok else None,
    )


class ExifReader(_Loader):
    """Reads GPS positions on one background thread, a chunk at a time: the next chunk is read
    once the window has taken the last one, so a large folder never floods the event loop."""

    read = Signal(list)  # list[ExifResult], one chunk
    _chunk = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self._queue: deque[list[tuple[str, str]]] = deque()  # the window's thread only
        self._reading = False
        self._chunk.connect(self._deliver)

    def request(self, items: Sequence[tuple[str, str]]) -> None:
        """Read the GPS of ``items``: (key, path) pairs."""
        for start in range(0, len(items), EXIF_CHUNK):
            self._queue.append(list(items[start : start + EXIF_CHUNK]))
        self._next()

    def _next(self) -> None:
        if self._reading or not self._queue or self.stopped:
            return
        chunk = self._queue.popleft()
        self._reading = True
        self.pool.start(_Job(lambda: self._chunk.emit([read_exif(*i) for i in chunk])))

    def _deliver(self, results: list[ExifResult]) -> None:
        self._reading = False
        self.read.emit(results)
        self._next()

    @property
    def idle(self) -> bool:
        return not self._reading and not self._queue


class PhotoFinder(_Loader):
    """Finds the photos among dropped or opened paths (folders walked recursively, as
    :func:`locdiff_core.photo.reading.iter_photos`) on one background thread, and hands them
    to the window in chunks as the walk goes: a large tree, or one on a slow network drive,
    never freezes the window, and its first photos show at once. Requests run one after
    another, so photos arrive in the order they were given."""

    found = Signal(int, list)  # request, [(absolute path, key)], in walk order
    finished = Signal(int, int)  # request, photos found in all
    _done = Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self._next_request = 0
        self._active: set[int] = set()  # the window's thread only
        self._done.connect(self._finish)

    def request(self, paths: Iterable[Path | str]) -> int:
        """Find the photos among ``paths``; returns the request's number (0 once stopped)."""
        if self.stopped:
            return 0
        self._next_request += 1
        request = self._next_request
        self._active.add(request)
        roots = [Path(p) for p in paths]
        self.pool.start(_Job(lambda: self._walk(request, roots)))
        return request

    @property
    def idle(self) -> bool:
        """No walk is running or queued, and every chunk found has been delivered."""
        return not self._active

    def _walk(self, request: int, roots: list[Path]) -> None:
        chunk: list[tuple[Path, str]] = []
        count, sent = 0, time.monotonic()
        for path in iter_photos(roots):
            if self.stopped:  # the window is closing: end the walk at once
                break
            chunk.append(identify(path))
            count += 1
            if len(chunk) >= FIND_CHUNK or time.monotonic() - sent > FIND_EVERY_S:
                self.found.emit(request, chunk)
                chunk, sent = [], time.monotonic()
        if chunk:
            self.found.emit(request, chunk)
        self._done.emit(request, count)

    def _finish(self, request: int, count: int) -> None:
        self._active.discard(request)
        self.finished.emit(request, count)


class PlaceNamer(_Loader):
    """Offline place names (GeoNames via :mod:`locdiff_core.photo.geocode`), in the background."""

    found = Signal(list)  # list[(lat, lon, label)]
    _named = Signal(list)
    _warmed = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self._pending = 0
        self._named.connect(self._deliver)
        self._warmed.connect(self._done)

    def warm_up(self) -> None:
        """Load the place data now (about a second, once; its JSON parser holds the GIL, so
        this is done while the window opens rather than in the middle of a prediction)."""
        self.request([(0.0, 0.0)], quiet=True)

    def request(self, points: Iterable[LatLon], quiet: bool = False) -> None:
        points = list(points)
        if points and not self.stopped:
            self._pending += 1
            emit = self._warmed if quiet else self._named
            self.pool.start(_Job(lambda: emit.emit(name_places(points))))

    def _deliver(self, places: list) -> None:
        self._done()
        self.found.emit(places)

    def _done(self, *_args) -> None:
        self._pending -= 1

    @property
    def idle(self) -> bool:
        return self._pending == 0


def name_places(points: Iterable[LatLon]) -> list[tuple[float, float, str]]:
    """``(lat, lon, "City, Region, Country")`` for each point (offline)."""
    out = []
    for lat, lon in points:
        try:
            out.append((lat, lon, reverse_geocode(lat, lon).label()))
        except ValueError as exc:  # the place data is missing: say so in place of a name
            out.append((lat, lon, f"(no place names: {exc})"))
    return out


class Task(QObject):
    """Runs ``fn(progress, cancelled)`` on a pool thread; reports ``done(result)`` or
    ``failed(message)`` (ValueError and OSError messages as they are), and ``progress``."""

    done = Signal(object)
    failed = Signal(str)
    progress = Signal(object, object)  # (done, total) as Python ints: a C++ int ends at 2 GiB

    def __init__(self, fn: Callable, pool: QThreadPool | None = None, parent=None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._cancel = False
        self._pool = pool or QThreadPool.globalInstance()

    def start(self) -> Task:
        self._pool.start(_Job(self._run))
        return self

    def cancel(self) -> None:
        self._cancel = True

    def _run(self) -> None:
        try:
            result = self._fn(self.progress.emit, lambda: self._cancel)
        except OSError as exc:  # "[Errno 13] Permission denied: '...'" said plainly
            where = exc.filename if exc.filename is not None else "a file"
            self.failed.emit(str(os_error(where, exc, "using it", kind=PhotoErrorKind.UNREADABLE)))
            return
        except ValueError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.done.emit(result)


class TaskSet(QObject):
    """Starts :class:`Task` s and keeps them alive until they report."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._running: set[Task] = set()

    def start(self, fn: Callable, on_done: Callable, on_failed: Callable) -> Task:
        task = Task(fn, parent=self)
        self._running.add(task)
        task.done.connect(on_done)
        task.failed.connect(on_failed)
        for signal in (task.done, task.failed):
            signal.connect(lambda *_a, t=task: self._running.discard(t))
        return task.start()

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def cancel_all(self) -> None:
        for task in self._running:
            task.cancel()
