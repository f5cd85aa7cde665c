"""Predictions started from the window: jobs queued in the prediction worker
(:class:`app.workers.prediction.PredictionController`), their photos marked queued in the
session until the job ends, each result put into the session as it arrives, and the newest job's
progress (with Cancel) in the status bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from PySide6.QtCore import QObject

from app.current_model import CurrentModel
from app.model.photo import PhotoPrediction
from app.model.session import Session
from app.model.settings import Settings
from app.widgets.progress import ProgressStatus
from app.workers.prediction import PredictionController


class PredictionHost(Protocol):
    """What predictions need of the window."""

    session: Session
    settings: Settings
    predictor: PredictionController
    current_model: CurrentModel
    progress: ProgressStatus

    def notify(self, text: str) -> None: ...


class PredictionJobs(QObject):
    """The window's prediction jobs: their photos by job id, and the worker's reports on them."""

    def __init__(self, window: PredictionHost, parent: QObject) -> None:
        super().__init__(parent)
        self.w = window
        self._jobs: dict[int, list[str]] = {}
        worker = window.predictor.worker
        worker.progress.connect(self._progress)
        worker.predicted.connect(self._predicted)
        worker.failed.connect(self._failed)
        worker.finished.connect(self._finished)

    def predict(self, keys: Sequence[str]) -> int | None:
        """Queue a prediction of these photos; returns the job id (None when nothing started)."""
        refusal = self.w.current_model.refusal()
        if refusal:
            self.w.notify(refusal)
            return None
        photos = [self.w.session.photo(k) for k in keys]
        todo = [p for p in photos if p is not None and not p.queued and not p.load_error]
        if not todo:
            self.w.notify("nothing to predict: select photos that can be read")
            return None
        job = self.w.predictor.predict([(p.key, str(p.path)) for p in todo], self.w.settings)
        self._jobs[job] = [p.key for p in todo]
        self.w.session.set_queued(self._jobs[job], True)
        self.w.progress.start(f"predicting {len(todo)} photo{'s' * (len(todo) != 1)}…")
        return job

    def cancel(self) -> None:
        if self.w.predictor.busy:
            self.w.predictor.cancel()
            self.w.progress.label.setText("cancelling…")
            self.w.progress.cancel.setEnabled(False)

    def _progress(self, job: int, fraction: float, text: str) -> None:
        if job == max(self._jobs, default=None):
            self.w.progress.set_progress(fraction, f"predicting: {text}")

    def _predicted(self, _job: int, key: str, prediction: PhotoPrediction) -> None:
        self.w.session.set_prediction(key, prediction)

    def _failed(self, _job: int, key: str, message: str) -> None:
        self.w.session.set_predict_error(key, message)

    def _finished(self, job: int, outcome: str, message: str) -> None:
        self.w.session.set_queued(self._jobs.pop(job, []), False)
        self.w.notify(message if outcome != "failed" else f"prediction failed: {message}")
        if not self.w.predictor.busy:
            self.w.progress.finish()
