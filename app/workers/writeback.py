"""Writing the confirmed locations into the photos, and undoing the last such write.

Qt-free; the window runs these on a pool thread (:class:`app.workers.loaders.Task`). The work is
:func:`locdiff_core.photo.write_gps_each` (each photo at its own position, lossless, atomic,
with backups, as one batch) and :func:`locdiff_core.photo.undo_last_batch`. The app keeps its
journal in a folder of its own (``<data dir>/write-journal``); starting a new write forgets
the previous one, as the command line's journal does, and "Undo last write" undoes every part
found there (journals written in parts, one per position, by earlier versions included).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from app.model.session import WriteItem
from app.model.settings import Settings, data_dir
from locdiff_core.photo import (
    BackupMode,
    FileResult,
    WriteConfig,
    WriterBackend,
    undo_last_batch,
    write_gps_each,
)
from locdiff_core.photo.journal import JournalError
from locdiff_core.photo.writing import backup_path

ProgressFn = Callable[[int, int], None]
CancelledFn = Callable[[], bool]


def journal_root() -> Path:
    """Where the app keeps the undo journal of its last write (``LOCDIFF_DATA_DIR`` moves it)."""
    return data_dir() / "write-journal"


def write_config(settings: Settings, journal_dir: Path | None) -> WriteConfig:
    return WriteConfig(
        backend=WriterBackend(settings.write_method),
        backup=BackupMode.NEXT_TO_FILE if settings.write_backup else BackupMode.NONE,
        journal_dir=journal_dir,
    )


def write_locations(
    items: Sequence[WriteItem],
    settings: Settings,
    root: Path | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[tuple[str, FileResult]]:
    """Write each item's position (and altitude, when it has one) into its file; ``(key,
    result)`` per item, in item order."""
    root = journal_root() if root is None else root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    config = write_config(settings, root / "000000")  # one part: one batch, one undo
    placements = [(i.path, i.lat, i.lon, i.alt) for i in items]
    results = write_gps_each(placements, config, progress=progress, cancelled=cancelled)
    return [(i.key, r) for i, r in zip(items, results, strict=True)]


def undo_last_write(
    root: Path | None = None, remove_backups: bool = False
) -> list[FileResult[str]]:
    """Put back every file of the app's last write; ``ValueError`` when there is nothing to undo.
    With ``remove_backups``, each ``photo.jpg_original`` that is byte for byte the photo put
    back is deleted (it holds nothing the photo does not); any other is kept."""
    root = journal_root() if root is None else root
    parts = sorted(root.iterdir(), reverse=True) if root.is_dir() else []
    results: list[FileResult[str]] = []
    for part in parts:
        try:
            results += undo_last_batch(part)
        except JournalError:  # damaged, or held by another write: say so, delete nothing
            raise
        except ValueError:  # this part wrote nothing (all its files failed), or is done
            shutil.rmtree(part, ignore_errors=True)
            continue
        if not (part / "gps-undo").exists():  # fully undone: the journal removed itself
            shutil.rmtree(part, ignore_errors=True)
    if not results:
        raise ValueError("nothing to undo: no write of GPS positions from the app is recorded")
    if remove_backups:
        for r in results:
            if r.ok:
                _remove_identical_backup(Path(r.path))
    return results


def _remove_identical_backup(path: Path) -> None:
    backup = backup_path(path, WriteConfig(backup=BackupMode.NEXT_TO_FILE))
    try:
        if backup is not None and backup.is_file() and backup.read_bytes() == path.read_bytes():
            backup.unlink()
    except OSError:  # unreadable or held: keeping a backup is always safe
        pass


def describe_write(result: FileResult) -> str:
    """What happened to one file, for its row in the photo list."""
    if not result.ok:
        return f"write failed: {result.error.message}"
    outcome = result.value
    text = f"written ({outcome.method.value})"
    if outcome.backup is not None:
        text += f", original kept as {outcome.backup.name}"
    return f"{text}; {result.warning}" if result.warning else text
