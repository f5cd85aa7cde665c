"""Downloads started from the window: image-encoder weights (*Get the pretrained model* on the
first run, GeoCLIP's backbone, the OpenAI CLIP ViT-L/14 weights; *Download encoder weights* for a
checkpoint's encoder) and a model checkpoint from the URL in Settings (*File > Download model*).

Asks first (never a silent download), then downloads on a pool thread
(:func:`app.workers.prediction.fetch_encoder_weights` in an
:class:`app.workers.loaders.Task`) while the model
panel shows the megabytes done and a Cancel button, and the window stays usable. The core
checks the file's size and sha256 before it lands under its final name. A cancelled download
keeps what arrived (when the server serves byte ranges) and the next click continues it; a
failed one says how to bring the file by hand. Once the file is in place the model loads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtWidgets import QProgressDialog, QWidget

from app.model.model_info import EncoderWanted, download_question, megabytes
from app.model.settings import Settings
from app.widgets.dialogs import Prompts
from app.widgets.model_panel import ModelPanel
from app.workers.download import download, model_destination
from app.workers.loaders import Task, TaskSet
from app.workers.prediction import FetchOutcome, fetch_encoder_weights


class WeightsDownload:
    """One encoder-weights download at a time, reported in ``panel``; ``downloaded(path)`` is
    called once the weights are in place."""

    def __init__(
        self,
        tasks: TaskSet,
        panel: ModelPanel,
        notify: Callable[[str], None],
        report_failure: Callable[[str, str], None],
        downloaded: Callable[[Path], None],
    ) -> None:
        self.tasks, self.panel = tasks, panel
        self.notify, self.report_failure, self.downloaded = notify, report_failure, downloaded
        self.task: Task | None = None
        self.wanted: EncoderWanted | None = None
        panel.cancel_download_requested.connect(self.cancel)

    @property
    def busy(self) -> bool:
        return self.task is not None

    def start(self, wanted: EncoderWanted, prompts) -> Task | None:
        """Ask through ``prompts`` (``confirm(title, text)``), then download; the task, or None
        when the user said no or a download is already running."""
        if self.task is not None:
            self.notify("the download is already running: its progress is in the model panel")
            return None
        if not prompts.confirm(wanted.title, download_question(wanted)):
            return None
        self.wanted = wanted
        self.panel.download_started(wanted)
        self.task = self.tasks.start(
            lambda progress, cancelled: fetch_encoder_weights(wanted, progress, cancelled),
            self._done,
            self._failed,
        )
        self.task.progress.connect(self.panel.download_progress)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.panel.download_cancelling()

    def _done(self, outcome: FetchOutcome) -> None:
        wanted, self.task = self.wanted, None
        if outcome.path is None:
            note = self._kept_note(wanted, outcome.kept)
            self.panel.download_ended(note)
            self.notify(f"download cancelled: {note}")
            return
        self.panel.download_ended("")
        self.notify(f"downloaded {wanted.what} to {outcome.path}")
        self.downloaded(outcome.path)

    def _failed(self, message: str) -> None:
        wanted, self.task = self.wanted, None
        self.panel.download_ended(
            f"The download failed. Clicking “{wanted.title}” again retries it, continuing "
            "from what was kept if the server allows."
        )
        self.report_failure(wanted.title, message)

    def _kept_note(self, wanted: EncoderWanted, kept: int) -> str:
        if not kept:
            return (
                "nothing was kept (the server cannot resume downloads); "
                f"“{wanted.title}” starts it again"
            )
        total = self.panel.download_total
        return (
            f"{megabytes(kept)} of {megabytes(total)} are kept; click “{wanted.title}” again "
            "to continue from there"
        )


class DownloadHost(Protocol):
    """What a model download needs of the window."""

    settings: Settings
    prompts: Prompts
    tasks: TaskSet

    def notify(self, text: str) -> None: ...

    def report_failure(self, title: str, message: str) -> None: ...

    def apply_settings(self, new: Settings) -> None: ...


def download_model(window: DownloadHost, parent: QWidget) -> None:
    """Fetch the checkpoint at the settings' model URL, after asking, behind a progress dialog
    with Cancel; the window then uses it (and saves it in the settings)."""
    url = window.settings.model_url
    if not url:
        window.prompts.error(
            "Download model",
            "No model download URL is set: enter one in Settings (Edit > Settings…).",
        )
        return
    dest = model_destination(url)
    if not window.prompts.confirm("Download model", f"Download the model from\n{url}\nto {dest}?"):
        return
    dialog = QProgressDialog(f"Downloading {url}…", "Cancel", 0, 1000, parent)
    dialog.setWindowTitle("Download model")
    dialog.setMinimumDuration(0)

    def downloaded(path: Path) -> None:
        dialog.reset()
        window.notify(f"downloaded the model to {path}")
        window.apply_settings(dataclasses.replace(window.settings, checkpoint=str(path)))

    def failed(message: str) -> None:
        if dialog.wasCanceled():
            window.notify(message)  # the download says what it kept for the next try
        else:
            window.report_failure("Download model", message)
        dialog.reset()

    task = window.tasks.start(
        lambda progress, cancelled: download(url, dest, progress, cancelled), downloaded, failed
    )
    task.progress.connect(
        lambda done, total: dialog.setValue(int(1000 * done / total)) if total else None
    )
    dialog.canceled.connect(task.cancel)
    dialog.show()
