"""The window's work kept on disk: the open photos, their predictions, confirmed locations and
what was written, in one SQLite file, so that a quit or a crash loses nothing saved.

Qt-free and torch-free. Each :meth:`SessionStore.save` is one transaction (atomic: a crash
leaves the last one whole); the file is in WAL mode with ``synchronous=NORMAL``, so a committed
save survives the process being killed. Only the photos that changed are written (a
prediction's arrays, about 70 kB with its density, only when it is new). What is read from the
files themselves (EXIF positions, capture times, thumbnails) is not kept: it is read again.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.model.photo import Photo, PhotoPrediction
from locdiff_core.engines import Engine
from locdiff_core.photo.errors import PhotoErrorKind, os_error
from locdiff_core.photo.read_errors import describe_content

FORMAT = 1
SESSION_FILTER = "LocDiff Studio sessions (*.locdiff-session);;All files (*)"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS photos (
    key TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL,        -- JSON: confirmed, its altitude and source, what was written
    prediction TEXT,            -- JSON: the prediction's numbers and engine
    arrays BLOB                 -- npz: the prediction's samples and density
);
"""


@dataclass(frozen=True)
class StoredPhoto:
    """One photo as the store gives it back."""

    key: str
    path: Path
    confirmed: tuple[float, float] | None
    confirmed_alt: float | None
    confirmed_from: str | None
    written: tuple[tuple[float, float], str] | None
    prediction: PhotoPrediction | None


def _state(photo: Photo) -> str:
    written = None
    if photo.written is not None:
        (lat, lon), source = photo.written
        written = [lat, lon, source]
    return json.dumps(
        {
            "confirmed": list(photo.confirmed) if photo.confirmed else None,
            "confirmed_alt": photo.confirmed_alt,
            "confirmed_from": photo.confirmed_from,
            "written": written,
        }
    )


def _prediction_row(pred: PhotoPrediction) -> tuple[str, bytes]:
    numbers = json.dumps(
        {
            "best": list(pred.best),
            "centre": list(pred.centre),
            "candidates": [list(c) for c in pred.candidates],
            "radius50_km": pred.radius50_km,
            "radius90_km": pred.radius90_km,
            "engine": str(pred.engine),
            "model": pred.model,
        }
    )
    buffer = io.BytesIO()
    arrays = {"samples": np.asarray(pred.samples, dtype=np.float64)}
    if pred.density is not None:
        arrays["density"] = np.asarray(pred.density, dtype=np.float32)
    np.savez(buffer, **arrays)
    return numbers, buffer.getvalue()


def _prediction(numbers: str, blob: bytes) -> PhotoPrediction:
    data = json.loads(numbers)
    with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
        samples = arrays["samples"]
        density = arrays["density"] if "density" in arrays.files else None
    return PhotoPrediction(
        best=tuple(data["best"]),
        centre=tuple(data["centre"]),
        candidates=tuple(tuple(c) for c in data["candidates"]),
        radius50_km=float(data["radius50_km"]),
        radius90_km=float(data["radius90_km"]),
        samples=samples,
        density=density,
        engine=Engine(data["engine"]),
        model=str(data.get("model", "")),
    )


class SessionStore:
    """One session file. ``ValueError`` (naming the file and what to do) for a file that is not
    a session or is from a newer version of the app."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _check_header(self.path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            found = self._db.execute("SELECT value FROM meta WHERE name='format'").fetchone()
        except sqlite3.Error as exc:
            raise ValueError(f"{self.path}: {session_problem(exc)}") from exc
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT),))
        elif int(found[0]) > FORMAT:
            raise ValueError(
                f"{self.path}: a session of a newer LocDiff Studio (format {found[0]}); "
                "update the app to open it"
            )
        self._saved_predictions: dict[str, PhotoPrediction] = {}  # key -> the one stored

    def close(self) -> None:
        self._db.close()

    def save(self, photos: Sequence[Photo], changed: Iterable[str] | None = None) -> int:
        """Store the order of ``photos`` and the rows of those in ``changed`` (None: all);
        photos no longer among them are dropped. One transaction; returns the rows written."""
        wanted = None if changed is None else set(changed)
        keys = {p.key for p in photos}
        rows = 0
        with self._transaction():
            stored = {k for (k,) in self._db.execute("SELECT key FROM photos")}
            gone = stored - keys
            self._db.executemany("DELETE FROM photos WHERE key=?", [(k,) for k in gone])
            for k in gone:
                self._saved_predictions.pop(k, None)
            for position, photo in enumerate(photos):
                if wanted is not None and photo.key not in wanted and photo.key in stored:
                    self._db.execute(
                        "UPDATE photos SET position=? WHERE key=? AND position<>?",
                        (position, photo.key, position),
                    )
                    continue
                self._write(photo, position)
                rows += 1
        return rows

    def _write(self, photo: Photo, position: int) -> None:
        pred = photo.prediction
        self._db.execute(
            "INSERT INTO photos (key, path, position, state) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET path=excluded.path, position=excluded.position, "
            "state=excluded.state",
            (photo.key, str(photo.path), position, _state(photo)),
        )
        if pred is None:
            self._db.execute(
                "UPDATE photos SET prediction=NULL, arrays=NULL WHERE key=?", (photo.key,)
            )
            self._saved_predictions.pop(photo.key, None)
        elif self._saved_predictions.get(photo.key) is not pred:
            numbers, blob = _prediction_row(pred)
            self._db.execute(
                "UPDATE photos SET prediction=?, arrays=? WHERE key=?", (numbers, blob, photo.key)
            )
            self._saved_predictions[photo.key] = pred

    def load(self) -> list[StoredPhoto]:
        """The stored photos in their order. A row that cannot be read is left out (its file
        is still on disk: adding the photo again is enough)."""
        out = []
        rows = self._db.execute(
            "SELECT key, path, state, prediction, arrays FROM photos ORDER BY position"
        )
        for key, path, state, numbers, blob in rows:
            try:
                data = json.loads(state)
                pred = _prediction(numbers, blob) if numbers else None
            except (ValueError, KeyError, TypeError, OSError):
                continue
            written = data.get("written")
            if pred is not None:  # the session gets this very object: not written again
                self._saved_predictions[key] = pred
            out.append(
                StoredPhoto(
                    key,
                    Path(path),
                    tuple(data["confirmed"]) if data.get("confirmed") else None,
                    data.get("confirmed_alt"),
                    data.get("confirmed_from"),
                    ((written[0], written[1]), written[2]) if written else None,
                    pred,
                )
            )
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        """A stored setting of the session (the list's filter, the open tracks)."""
        found = self._db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return default if found is None else found[0]

    def put(self, values: dict[str, str]) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                list(values.items()),
            )

    def copy_to(self, target: Path | str) -> None:
        """A consistent copy of the session in ``target`` (SQLite's online backup)."""
        destination = sqlite3.connect(target)
        try:
            self._db.backup(destination)
        finally:
            destination.close()

    def _transaction(self):
        return _Transaction(self._db)


_UNREADABLE = PhotoErrorKind.UNREADABLE
_SQLITE_HEADER = b"SQLite format 3\0"
_SQLITE_TEXT = (  # (words in SQLite's message, what it means for the person)
    ("malformed", "the session file is damaged; move it away to start afresh"),
    ("not a database", "the session file is damaged; move it away to start afresh"),
    ("unable to open", "the session file cannot be opened; check its and its folder's permissions"),
    ("readonly", "the session file is read-only; make it writable, or save the session elsewhere"),
    ("locked", "the session file is in use by another program; close it and try again"),
    ("full", "the disk is full; free some space and try again"),
    ("i/o error", "the disk reported an input/output error; the drive may be failing"),
)


def session_problem(exc: Exception) -> str:
    """What an SQLite (or OS) error on the session file means, in plain words."""
    if isinstance(exc, OSError):
        error = os_error(exc.filename or "session", exc, "using the session file", kind=_UNREADABLE)
        return error.message
    text = str(exc)
    if not isinstance(exc, sqlite3.Error):
        return f"the session file could not be used ({type(exc).__name__}: {text})"
    for words, meaning in _SQLITE_TEXT:
        if words in text.lower():
            return meaning
    return f"the session file could not be used: SQLite reported {type(exc).__name__}: {text}"


def _check_header(path: Path) -> None:
    """``ValueError`` for a file there that is not an SQLite database (an empty one becomes a
    new session), saying what it holds instead."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"{path}: {session_problem(exc)}") from exc
    if head and not head.startswith(_SQLITE_HEADER):
        what = describe_content(head) or "it does not start like an SQLite database"
        raise ValueError(
            f"{path}: not a LocDiff Studio session ({what}); "
            "open a .locdiff-session file, or move this one away to start afresh"
        )


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
