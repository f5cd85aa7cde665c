"""Undoing the last batch of GPS writes: every file it changed is put back from the copy the
journal (:mod:`~locdiff_core.photo.journal`) kept, unless it changed again since."""

from __future__ import annotations

from pathlib import Path

from locdiff_core.photo.errors import FileResult, PhotoError, PhotoErrorKind, os_error
from locdiff_core.photo.journal import Journal
from locdiff_core.photo.safe_io import copy_atomic, sha256_of


def undo_last_batch(journal_dir: Path | None = None) -> list[FileResult[str]]:
    """Put back every file of the last write batch as it was before; one result per file.

    A file changed again since that batch is left alone (its result says where the saved copy
    is). Raises ``ValueError`` when there is nothing to undo.
    """
    with Journal(journal_dir) as journal:
        journal.lock()
        loaded = journal.load()
        if loaded is None or not loaded[2]:
            raise ValueError("nothing to undo: no GPS write batch is recorded")
        _action, _when, entries = loaded
        results, left = [], []
        for entry in reversed(entries):
            path = Path(entry.path)
            try:
                results.append(FileResult(path, value=_undo_one(journal, entry)))
            except PhotoError as exc:
                results.append(FileResult(path, error=exc))
                if exc.kind is not PhotoErrorKind.NOTHING_TO_UNDO:  # worth another try later
                    left.append(entry)
            except OSError as exc:
                results.append(FileResult(path, error=os_error(path, exc, "restoring it")))
                left.append(entry)
        journal.keep_only(list(reversed(left)))
    return list(reversed(results))


def _undo_one(journal: Journal, entry) -> str:
    path = Path(entry.path)
    if path.exists() and sha256_of(path) != entry.written_sha256:
        raise PhotoError(
            PhotoErrorKind.WRITE_FAILED,
            path,
            "changed since the GPS write, so it was not restored"
            + (
                f"; the earlier version is in {journal.folder / entry.saved}" if entry.saved else ""
            ),
        )
    if entry.saved is None:
        path.unlink(missing_ok=True)
        return "removed (it was created by the write)"
    if not entry.saved:
        raise PhotoError(
            PhotoErrorKind.NOTHING_TO_UNDO,
            path,
            "was written without a backup (--no-backup), so it cannot be restored",
        )
    copy_atomic(journal.folder / entry.saved, path)
    return "restored"
