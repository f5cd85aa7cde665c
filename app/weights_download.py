"""Getting image-encoder weights from the window: *Get the pretrained model* on the first run
(GeoCLIP's backbone, the OpenAI CLIP ViT-L/14 weights) and *Download encoder weights* for a
checkpoint's encoder.

Asks first (never a silent download), then downloads on a pool thread
(:func:`app.workers.fetch_encoder_weights` in an :class:`app.loaders.Task`) while the model
panel shows the megabytes done and a Cancel button, and the window stays usable. The core
checks the file's size and sha256 before it lands under its final name. A cancelled download
keeps what arrived (when the server serves byte ranges) and the next click continues it; a
failed one says how to bring the file by hand. Once the file is in place the model loads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.loaders import Task, TaskSet
from app.model_info import EncoderWanted, download_question, megabytes
from app.model_panel import ModelPanel
from app.workers import FetchOutcome, fetch_encoder_weights


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
