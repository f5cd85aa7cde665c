"""The part file of a download, ``<dest>.part``, and its note ``<dest>.part.json``.

The bytes of a download in progress go to the part; the note names what they were received for
(URL, total size, sha256, ETag) so that a later call resumes only the same file. What a
download leaves after a crash besides these, the hidden ``.<dest>.*.tmp`` files of atomic
writes and a ``<dest>.tmp``, is swept by :meth:`PartFile.sweep_temps`. Used by
:mod:`locdiff_core.download`, which decides when a part is kept, resumed or removed.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable
from pathlib import Path

from locdiff_core.atomic_file import atomic_write, fsync_dir

PART_SUFFIX = ".part"  # <dest>.part: the bytes received so far
NOTE_SUFFIX = ".part.json"  # <dest>.part.json: what they were received for
CHUNK = 1 << 20


class StopRequested(Exception):  # noqa: N818 (a signal between chunks, not a fault)
    """Raised between chunks when ``cancel()`` is true; the download reports it."""


class PartWriteError(Exception):
    """An ``OSError`` of the part file (its ``__cause__``); the download reports it."""


def agree(a, b) -> bool:
    """Two announcements agree unless both are known and differ."""
    return a is None or b is None or a == b


class PartFile:
    """The part file ``<dest>.part`` and its note ``<dest>.part.json``, beside ``dest``."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.path = dest.with_name(dest.name + PART_SUFFIX)
        self.note = dest.with_name(dest.name + NOTE_SUFFIX)

    def size(self) -> int:
        """Bytes in the part file (0 when there is none)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_note(self) -> dict | None:
        """The note, or ``None`` when it is missing or unreadable."""
        try:
            note = json.loads(self.note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        fields_ok = (
            isinstance(note, dict)
            and isinstance(note.get("url"), str)
            and isinstance(note.get("total"), int)
        )
        return note if fields_ok else None

    def write_note(self, url: str, total: int, sha256: str | None, etag: str | None) -> None:
        """Record what the part is being received for (written atomically)."""
        note = {"url": url, "total": total, "sha256": sha256, "etag": etag}
        try:
            with atomic_write(self.note, text=True) as fh:
                json.dump(note, fh)
        except OSError as exc:
            raise PartWriteError from exc

    def kept_for(self, url: str, sha256: str | None, size: int | None) -> int:
        """The size of a part that may be resumed for ``url``; 0 (part and note removed) when
        there is none, it has no note, or its note names another URL, sha256 or size."""
        note, kept = self.read_note(), self.size()
        usable = (
            note is not None
            and kept > 0
            and note.get("url") == url
            and agree(note.get("sha256"), sha256)
            and agree(note.get("total") or None, size)
            and kept <= (note.get("total") or kept)
        )
        if not usable:
            self.remove()
            return 0
        return kept

    def matches(self, total: int, sha256: str | None, etag: str | None) -> bool:
        """Whether the note was written for the file the server announces now."""
        note = self.read_note() or {}
        no_sha = note.get("sha256") is None and sha256 is None
        return (
            agree(note.get("total") or None, total or None)
            and agree(note.get("sha256"), sha256)
            and (not no_sha or agree(note.get("etag"), etag))
        )

    def hash_into(self, digest, size: int, cancel: Callable[[], bool] | None) -> bool:
        """Feed the first ``size`` bytes of the part to ``digest``; false if it has fewer."""
        try:
            with open(self.path, "rb") as fh:
                while size > 0:
                    if cancel is not None and cancel():
                        raise StopRequested
                    chunk = fh.read(min(CHUNK, size))
                    if not chunk:
                        return False
                    digest.update(chunk)
                    size -= len(chunk)
        except OSError as exc:
            raise PartWriteError from exc
        return True

    def open(self, append: bool) -> int:
        """The part file's descriptor, for appending or truncated to nothing."""
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)
        flags |= os.O_APPEND if append else os.O_TRUNC
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise PartWriteError from exc

    def finish(self) -> None:
        """Move the verified part to ``dest`` (fsynced, then ``os.replace``); drop the note."""
        try:
            with open(self.path, "r+b") as fh:
                os.fsync(fh.fileno())
            os.replace(self.path, self.dest)
        except OSError as exc:
            raise PartWriteError from exc
        fsync_dir(self.dest.parent)
        self.note.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the part and its note (those missing are skipped)."""
        self.path.unlink(missing_ok=True)
        self.note.unlink(missing_ok=True)

    def sweep_temps(self) -> None:
        """Delete what a killed download of ``dest`` left besides its part: the hidden
        ``.<name>.*.tmp`` files of atomic writes (of the note, of a record beside ``dest``)
        and ``<name>.tmp``. The part and note are judged by :meth:`kept_for`."""
        name = self.dest.name
        leftovers = [*self.dest.parent.glob(f".{glob.escape(name)}.*.tmp")]
        for leftover in [*leftovers, self.dest.with_name(name + ".tmp")]:
            if leftover.is_file():
                leftover.unlink(missing_ok=True)

    def kept_message(self) -> str:
        """What is kept for a later call, and what to do (for error messages)."""
        size = self.size()
        if not size:
            return "nothing is kept; run the download again"
        total = (self.read_note() or {}).get("total") or 0
        of = f" of {total:,}" if total else ""
        return f"{size:,}{of} bytes are kept in {self.path}; run the download again to resume it"
