"""What leaves the app: exports (CSV, GeoJSON, GPX), GPS writes into the photos, and undo.

All file work runs on a pool thread (:class:`app.workers.loaders.TaskSet`); the window stays
responsive and shows the outcome per photo in the list. Writing asks first, naming the files
(:meth:`app.widgets.dialogs.Prompts.confirm_write`), with backups on by default (from the settings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from app.model.exports import export_plan
from app.model.session import Session
from app.model.settings import Settings
from app.widgets.dialogs import Prompts
from app.widgets.progress import ProgressStatus
from app.workers.loaders import Task, TaskSet
from app.workers.writeback import describe_write, undo_last_write, write_locations

EXPORT_FILTER = "CSV (*.csv);;GeoJSON (*.geojson);;GPX (*.gpx)"
EXPORT_SUFFIXES = {".csv": "csv", ".geojson": "geojson", ".json": "geojson", ".gpx": "gpx"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


class OutputsHost(Protocol):
    """What exports and writes need of the window."""

    session: Session
    settings: Settings
    prompts: Prompts
    tasks: TaskSet
    write_progress: ProgressStatus

    def notify(self, text: str) -> None: ...

    def report_failure(self, title: str, message: str) -> None: ...

    def reread_exif(self, keys: Iterable[str]) -> None: ...


class Outputs:
    """Export, write and undo for one window (its session, prompts, status bar and tasks)."""

    def __init__(self, window: OutputsHost) -> None:
        self.w = window

    # -- export -------------------------------------------------------------------------------
    def export_dialog(self, keys: Sequence[str]) -> None:
        path = self.w.prompts.save_path("Export locations", EXPORT_FILTER, "locations.csv")
        if path:
            self.export_to(keys, path)

    def export_to(self, keys: Sequence[str], path: str | Path) -> Task | None:
        """Export the locations of ``keys`` (confirmed, EXIF or predicted, with the prediction's
        details) in the background; the format follows the suffix (default CSV). None, with a
        message, when none of them has a location."""
        path = Path(path)
        fmt = EXPORT_SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            path, fmt = path.with_name(path.name + ".csv"), "csv"
        try:
            plan = export_plan(self.w.session, list(keys), fmt)
        except ValueError as exc:
            self.w.report_failure("Export", str(exc))
            return None
        return self.w.tasks.start(
            lambda _progress, _cancelled: plan.write(path),
            self._exported,
            lambda message: self.w.report_failure("Export", message),
        )

    def _exported(self, summary) -> None:
        text = f"exported {_plural(summary.written, 'photo')} to {summary.path}"
        if summary.skipped:
            text += f"; left out {_plural(len(summary.skipped), 'photo')} without a location"
        self.w.notify(text)

    # -- write-back ------------------------------------------------------------------------------
    def write(self, keys: Sequence[str]) -> Task | None:
        """Write the confirmed locations among ``keys`` into the files, after asking."""
        items = self.w.session.write_plan(keys)
        if not items:
            self.w.notify(
                "no confirmed location to write: accept a best guess, drag a pin, right-click "
                "the map or set coordinates first"
            )
            return None
        ok, backup = self.w.prompts.confirm_write(items, self.w.settings.write_backup)
        if not ok:
            return None
        settings = dataclasses.replace(self.w.settings, write_backup=backup)
        progress = self.w.write_progress
        progress.start(f"writing {_plural(len(items), 'photo')}…")
        task = self.w.tasks.start(
            lambda report, cancelled: write_locations(
                items, settings, progress=report, cancelled=cancelled
            ),
            self._written,
            self._write_failed,
        )
        task.progress.connect(
            lambda done, total: progress.set_progress(
                done / max(total, 1), f"writing {done}/{total}"
            )
        )
        return task

    def _write_failed(self, message: str) -> None:
        self.w.write_progress.finish()
        self.w.report_failure("Write locations", message)

    def _written(self, results) -> None:
        self.w.write_progress.finish()
        for key, result in results:
            if result.ok:
                self.w.session.mark_written(key)
            self.w.session.set_write_note(key, describe_write(result))
        self.w.reread_exif([key for key, _ in results])
        failed = sum(not r.ok for _, r in results)
        text = f"wrote {_plural(len(results) - failed, 'photo')}"
        self.w.notify(text + (f", {failed} failed (see their status)" if failed else ""))

    def undo(self) -> Task | None:
        question = "Put back the photos of the last write as they were before?"
        if not self.w.prompts.confirm("Undo last write", question):
            return None
        return self.w.tasks.start(
            lambda _progress, _cancelled: undo_last_write(
                remove_backups=self.w.settings.undo_removes_backups
            ),
            self._undone,
            lambda message: self.w.report_failure("Undo last write", message),
        )

    def _undone(self, results) -> None:
        keys = []
        for r in results:
            key = str(Path(r.path).resolve())
            keys.append(key)
            note = r.value if r.ok else f"undo failed: {r.error.message}"
            self.w.session.set_write_note(key, note)
        self.w.reread_exif(keys)
        failed = sum(not r.ok for r in results)
        text = f"undid the last write: {_plural(len(results) - failed, 'file')} put back"
        self.w.notify(text + (f", {failed} failed" if failed else ""))
