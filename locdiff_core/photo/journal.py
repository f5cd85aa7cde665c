"""The undo journal: what the last GPS write batch changed, and how to put it back.

The journal lives in a per-user state folder (``platformdirs.user_state_dir("locdiff")``; the
``LOCDIFF_STATE_DIR`` environment variable overrides it, which tests use). It holds one batch:
a new batch replaces the previous one when it records its first file, so a batch that changes
nothing (every file failed, or had no GPS to remove) leaves the previous one undoable. For every
file it records the content before the write (a hard link to the replaced file, so it costs no
space on the same file system) and a hash of what was written, so undo never overwrites a file
that was changed again afterwards.

One batch (or undo) at a time uses a journal: :meth:`Journal.begin` and :meth:`Journal.lock`
take an exclusive lock on ``gps-undo.lock`` beside the journal folder, holding the process id,
until :meth:`Journal.close` (or the end of a ``with`` block, or of the process, however it ends:
the operating system drops the lock of a killed process, so it is never stale).

The index (``batch.jsonl``: a header line, then one line per file) is only ever replaced
atomically or appended to, and each appended line is flushed to disk before the file it
describes is replaced; a last line cut short by a crash therefore describes a file that was not
replaced, and is ignored. Anything else that does not parse is reported as
:class:`JournalError`, naming the journal and what to do, never as a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import platformdirs

from locdiff_core.atomic_file import fsync_dir
from locdiff_core.photo.safe_io import save_copy, write_bytes_atomic

JOURNAL_VERSION = 1
_SAVED_NAME = re.compile(r"files/[0-9]{6}[^/\\]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")

if os.name == "nt":
    import msvcrt

    _WIN_LOCK_AT = 1 << 20  # lock a byte past the pid text, so others can still read it

    def _try_lock(f: IO[bytes]) -> None:
        f.seek(_WIN_LOCK_AT)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(f: IO[bytes]) -> None:
        f.seek(_WIN_LOCK_AT)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(f: IO[bytes]) -> None:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(f: IO[bytes]) -> None:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def state_dir() -> Path:
    """Where locdiff keeps per-user state (``LOCDIFF_STATE_DIR`` overrides)."""
    override = os.environ.get("LOCDIFF_STATE_DIR")
    return Path(override) if override else Path(platformdirs.user_state_dir("locdiff"))


class JournalError(ValueError):
    """The undo journal cannot be read; the message names it and says what to do."""


class JournalBusyError(JournalError):
    """Another batch or undo holds the journal's lock; nothing was changed."""


@dataclass(frozen=True)
class JournalEntry:
    path: str  # absolute path of the changed file
    saved: str | None  # name of the saved previous content; None if the file did not exist
    written_sha256: str  # hash of what this batch wrote
    kept_copy: bool = True  # False when written with no backup: undo cannot restore it


class Journal:
    """The last batch of writes, stored under ``root`` (default: :func:`state_dir`).

    A write batch calls :meth:`begin`, :meth:`record` per file and :meth:`close`; an undo calls
    :meth:`lock`, :meth:`load`, :meth:`keep_only` and :meth:`close` (or uses ``with``).
    """

    def __init__(self, root: Path | None = None) -> None:
        self.folder = (root or state_dir()) / "gps-undo"
        self._entries: list[JournalEntry] = []
        self._action = ""  # of the batch in the index
        self._pending = ""  # of the batch begun, until its first record
        self._started = False  # whether this batch has replaced the previous one yet
        self._lock_file: IO[bytes] | None = None

    @property
    def index(self) -> Path:
        return self.folder / "batch.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.folder.with_name("gps-undo.lock")

    def lock(self, activity: str = "GPS undo") -> None:
        """Take the journal for ``activity`` (named in the message another process gets);
        raises :class:`JournalBusyError` when another batch or undo holds it."""
        if self._lock_file is not None:
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.lock_path, "a+b")  # noqa: SIM115 (held open while the batch runs)
        try:
            _try_lock(f)
        except OSError:
            f.seek(0)
            holder = f.read(200).decode("utf-8", "replace").split(maxsplit=1)
            f.close()
            pid = holder[0] if holder else "?"
            what = holder[1].strip() if len(holder) > 1 else "GPS write batch"
            raise JournalBusyError(
                f"another {what} (pid {pid}) is running with the "
                f"undo journal {self.folder}; wait for it to finish, then try again "
                "(nothing was changed)"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()} {activity}\n".encode())
        f.flush()
        self._lock_file = f

    def close(self) -> None:
        """Release the lock (a no-op when not held)."""
        f, self._lock_file = self._lock_file, None
        if f is not None:
            try:
                _unlock(f)
            finally:
                f.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def begin(self, action: str) -> None:
        """Lock the journal for a new batch; the previous batch is replaced only when this one
        records its first file."""
        self.lock(f"GPS {action} batch")
        self._pending = action
        self._started = False

    def record(self, path: Path, written_sha256: str, *, keep_copy: bool) -> None:
        """Note that ``path`` is about to be replaced by content hashing to ``written_sha256``;
        its current content is kept first (call this before replacing the file)."""
        assert self._lock_file is not None, "call begin() before record()"
        if not self._started:
            self._start()
        saved = None
        if path.exists() and keep_copy:
            saved = f"files/{len(self._entries):06d}{path.suffix}"
            save_copy(path, self.folder / saved)
            fsync_dir(self.folder / "files")
        elif path.exists():
            saved = ""  # existed, but no copy was kept
        entry = JournalEntry(str(path.absolute()), saved, written_sha256, keep_copy)
        with open(self.index, "a", encoding="utf-8") as f:  # one line per file: O(1) a write
            f.write(json.dumps(asdict(entry)) + "\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the caller replaces the file
        self._entries.append(entry)

    def _start(self) -> None:
        self._action, self._entries = self._pending, []
        if self.folder.exists():
            shutil.rmtree(self.folder)
        (self.folder / "files").mkdir(parents=True)
        self._rewrite()
        self._started = True

    def _rewrite(self) -> None:
        header = {
            "version": JOURNAL_VERSION,
            "action": self._action,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        lines = [json.dumps(header)] + [json.dumps(asdict(e)) for e in self._entries]
        write_bytes_atomic(self.index, ("\n".join(lines) + "\n").encode("utf-8"))

    def load(self) -> tuple[str, str, list[JournalEntry]] | None:
        """``(action, time, entries)`` of the recorded batch, or ``None`` when there is none.

        Raises :class:`JournalError` when the journal is damaged or from another version.
        """
        try:
            data = self.index.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise JournalError(
                f"the undo journal {self.index} cannot be read ({exc.strerror or exc}); "
                "check its permissions"
            ) from None
        try:
            header, rows = self._parse(data)
        except _DamageError as exc:
            raise JournalError(
                f"the undo journal {self.index} is damaged ({exc}); move the folder "
                f"{self.folder} away (it holds the saved originals) or delete it; the next "
                "GPS write starts a new journal"
            ) from None
        self._action = header["action"]
        self._entries = rows
        return header["action"], header["time"], list(rows)

    def _parse(self, data: bytes) -> tuple[dict, list[JournalEntry]]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _DamageError(f"not UTF-8 text at byte {exc.start}") from None
        lines = text.split("\n")
        lines.pop()  # "" after the last newline, or a line cut short by a crash (see above)
        docs = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise _DamageError(f"line {number} is not valid JSON: {exc.msg}") from None
        if not docs:
            raise _DamageError("it is empty")
        header = docs[0]
        if not isinstance(header, dict) or "version" not in header:
            raise _DamageError("line 1 is not a journal header")
        if header["version"] != JOURNAL_VERSION:
            raise JournalError(
                f"the undo journal {self.index} has format {header['version']}, this version "
                f"reads {JOURNAL_VERSION}; delete {self.folder} to start afresh"
            )
        for key in ("action", "time"):
            if not isinstance(header.get(key), str):
                raise _DamageError(f"the header's {key!r} is missing or not text")
        return header, [self._entry(doc, number) for number, doc in enumerate(docs[1:], 2)]

    def _entry(self, doc: object, number: int) -> JournalEntry:
        where = f"record {number}"
        if not isinstance(doc, dict) or set(doc) - {"path", "saved", "written_sha256", "kept_copy"}:
            raise _DamageError(f"{where} is not a file record")
        path, saved = doc.get("path"), doc.get("saved")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise _DamageError(f"{where} has no absolute 'path'")
        if not isinstance(doc.get("written_sha256"), str) or not _SHA256.fullmatch(
            doc["written_sha256"]
        ):
            raise _DamageError(f"{where} ({path}) has no valid 'written_sha256'")
        if not isinstance(doc.get("kept_copy", True), bool):
            raise _DamageError(f"{where} ({path}) has a 'kept_copy' that is not true or false")
        if saved is not None and not isinstance(saved, str):
            raise _DamageError(f"{where} ({path}) has a 'saved' that is not text")
        if saved and not _SAVED_NAME.fullmatch(saved):
            raise _DamageError(f"{where} ({path}) names a saved copy outside it: {saved!r}")
        if saved and not (self.folder / saved).is_file():
            raise _DamageError(f"the saved copy {self.folder / saved} of {path} is missing")
        return JournalEntry(path, saved, doc["written_sha256"], doc.get("kept_copy", True))

    def keep_only(self, entries: list[JournalEntry]) -> None:
        """Rewrite the batch with the entries that could not be undone (or clear it); takes the
        lock for the rewrite when it is not held."""
        held = self._lock_file is not None
        self.lock()
        try:
            if not entries:
                shutil.rmtree(self.folder, ignore_errors=True)
                return
            self._entries = entries
            self._rewrite()
        finally:
            if not held:
                self.close()


class _DamageError(Exception):
    """What is wrong inside the journal (turned into a :class:`JournalError` by ``load``)."""
