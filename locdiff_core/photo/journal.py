"""The undo journal: what the last GPS write batch changed, and how to put it back.

The journal lives in a per-user state folder (``platformdirs.user_state_dir("locdiff")``; the
``LOCDIFF_STATE_DIR`` environment variable overrides it, which tests use). It holds one batch:
starting a new batch forgets the previous one. For every file it records the content before the
write (a hard link to the replaced file, so it costs no space on the same file system) and a
hash of what was written, so undo never overwrites a file that was changed again afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from locdiff_core.photo.safe_io import save_copy

JOURNAL_VERSION = 1


def state_dir() -> Path:
    """Where locdiff keeps per-user state (``LOCDIFF_STATE_DIR`` overrides)."""
    override = os.environ.get("LOCDIFF_STATE_DIR")
    return Path(override) if override else Path(platformdirs.user_state_dir("locdiff"))


@dataclass(frozen=True)
class JournalEntry:
    path: str  # absolute path of the changed file
    saved: str | None  # name of the saved previous content; None if the file did not exist
    written_sha256: str  # hash of what this batch wrote
    kept_copy: bool = True  # False when written with no backup: undo cannot restore it


class Journal:
    """The last batch of writes, stored under ``root`` (default: :func:`state_dir`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.folder = (root or state_dir()) / "gps-undo"
        self._entries: list[JournalEntry] = []

    @property
    def index(self) -> Path:
        return self.folder / "batch.jsonl"

    def begin(self, action: str) -> None:
        """Forget the previous batch and start recording a new one."""
        if self.folder.exists():
            shutil.rmtree(self.folder)
        (self.folder / "files").mkdir(parents=True)
        self._entries = []
        self._action = action
        self._rewrite()

    def record(self, path: Path, written_sha256: str, *, keep_copy: bool) -> None:
        """Note that ``path`` is about to be replaced by content hashing to ``written_sha256``;
        its current content is kept first (call this before replacing the file)."""
        saved = None
        if path.exists() and keep_copy:
            saved = f"files/{len(self._entries):06d}{path.suffix}"
            save_copy(path, self.folder / saved)
        elif path.exists():
            saved = ""  # existed, but no copy was kept
        entry = JournalEntry(str(path), saved, written_sha256, keep_copy)
        self._entries.append(entry)
        with open(self.index, "a", encoding="utf-8") as f:  # one line per file: O(1) a write
            f.write(json.dumps(asdict(entry)) + "\n")

    def _rewrite(self) -> None:
        header = {
            "version": JOURNAL_VERSION,
            "action": self._action,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        lines = [json.dumps(header)] + [json.dumps(asdict(e)) for e in self._entries]
        tmp = self.index.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.index)

    def load(self) -> tuple[str, str, list[JournalEntry]] | None:
        """``(action, time, entries)`` of the recorded batch, or ``None`` when there is none."""
        if not self.index.exists():
            return None
        header, *rows = [
            json.loads(line)
            for line in self.index.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ] or [{}]
        if header.get("version") != JOURNAL_VERSION:
            raise ValueError(
                f"the undo journal {self.index} has format {header.get('version')}, this version "
                f"reads {JOURNAL_VERSION}; delete {self.folder} to start afresh"
            )
        self._action = header["action"]
        self._entries = [JournalEntry(**row) for row in rows]
        return header["action"], header["time"], list(self._entries)

    def keep_only(self, entries: list[JournalEntry]) -> None:
        """Rewrite the batch with the entries that could not be undone (or clear it)."""
        if not entries:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        self._entries = entries
        self._rewrite()
