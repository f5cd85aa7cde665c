"""The model the window predicts with: loaded in the prediction worker
(:class:`app.workers.prediction.PredictionController`), its state and engines as the worker
reports them, shown in the model panel, the status bar and the engine choice.

Also what changes the model: importing a checkpoint, downloading the encoder weights it lacks,
choosing an engine, and settings that name another checkpoint, encoder or device. Predictions
ask :meth:`CurrentModel.refusal` first.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel

from app.downloads import WeightsDownload
from app.model.model_info import NO_MODEL, ModelInfo, ModelState, unavailable_reason
from app.model.settings import Settings
from app.widgets.dialogs import Prompts
from app.widgets.engine_box import EngineBox
from app.widgets.model_panel import ModelPanel
from app.workers.prediction import PredictionController

MODEL_FIELDS = ("checkpoint", "encoder_weights", "device")  # settings that need a new load


class ModelHost(Protocol):
    """What the current model needs of the window."""

    settings: Settings
    prompts: Prompts
    predictor: PredictionController
    model_panel: ModelPanel
    model_label: QLabel
    engine_box: EngineBox
    weights_download: WeightsDownload

    def notify(self, text: str) -> None: ...

    def apply_settings(self, new: Settings) -> None: ...


class CurrentModel(QObject):
    """The window's model: ``state`` (a :class:`ModelState`) and ``info`` (its engines, or the
    weights to fetch), kept from the worker's reports."""

    def __init__(self, window: ModelHost, parent: QObject) -> None:
        super().__init__(parent)
        self.w = window
        self.state = ModelState.MISSING
        self.info: ModelInfo = NO_MODEL
        self.text = ""  # the worker's last word on the model: its name and device, or the problem
        worker = window.predictor.worker
        worker.model_info.connect(self._model_info)
        worker.model_status.connect(self._model_status)

    def load(self) -> None:
        """Load the settings' model in the worker (without a checkpoint: GeoCLIP, when the
        image encoder's weights are on disk)."""
        what = self.w.settings.checkpoint or "GeoCLIP (looking for the image encoder's weights)"
        self._model_status(ModelState.LOADING, f"loading {what}…")
        self.w.predictor.load_model(self.w.settings)

    def _model_info(self, info: ModelInfo) -> None:
        self.info = info
        self.w.engine_box.show_choices(self.w.settings.engine, info)

    def _model_status(self, state: str, text: str) -> None:
        self.state = state = ModelState(state)
        self.text = text
        self.w.model_panel.set_state(state, text, self.info)
        labels = {ModelState.READY: f"Model: {text}", ModelState.LOADING: "Loading the model…"}
        self.w.model_label.setText(labels.get(state, "No model"))

    def refusal(self) -> str | None:
        """Why a prediction cannot start now, with the fix; None when it can (also while the
        model loads: the worker runs the prediction after the load)."""
        if self.state.unusable:
            return (
                "no model to predict with: get the pretrained model, import a checkpoint, "
                "train one, or download weights"
            )
        reason = unavailable_reason(self.w.settings.engine, self.info)
        if self.state is ModelState.READY and reason:
            return reason
        return None

    def import_checkpoint(self) -> None:
        path = self.w.prompts.open_checkpoint()
        if path:
            self.w.apply_settings(dataclasses.replace(self.w.settings, checkpoint=path))

    def get_encoder_weights(self) -> None:
        """Download the image-encoder weights the model lacks (on the first run: the pretrained
        model's), after asking; the model loads once they are in place."""
        wanted = self.info.wanted
        if wanted is None:
            self.w.notify("no encoder weights to download: the model panel says what is missing")
            return
        self.w.weights_download.start(wanted, self.w.prompts)

    def choose_engine(self, engine: str) -> None:
        """Predict with ``engine`` (a Settings.engine value) from now on."""
        if engine != self.w.settings.engine:
            self.w.apply_settings(dataclasses.replace(self.w.settings, engine=engine))
        reason = unavailable_reason(engine, self.info)
        if self.state is ModelState.READY and reason:
            self.w.notify(reason)

    def settings_changed(self, old: Settings, new: Settings) -> None:
        """Show the engines for ``new``; load again when it names another model, or when the
        model is not ready (the new settings may fix it)."""
        self.w.engine_box.show_choices(new.engine, self.info)
        if (
            any(getattr(new, f) != getattr(old, f) for f in MODEL_FIELDS)
            or self.state is not ModelState.READY
        ):
            self.load()
