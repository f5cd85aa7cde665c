"""The model panel: says which model predicts, or, with none yet, the three ways to get one.

Without a model the app still opens, lists photos and shows their EXIF locations on the map;
this panel explains: import a checkpoint (a file dialog), train one (the Trainer tab), or
download weights (from the URL in Settings, asked first, with progress). When the image
encoder's weights are what is missing, it offers to download those.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressDialog,
    QPushButton,
    QVBoxLayout,
)

from app.download import download, model_destination

if TYPE_CHECKING:
    from app.main_window import MainWindow

WAYS = (
    "Photos and their EXIF locations already show on the map. To predict where the others "
    "were taken, get a model in one of three ways:<ol>"
    "<li><b>Import a checkpoint</b>: the <tt>checkpoint.safetensors</tt> of a training run.</li>"
    "<li><b>Train one</b> in the Trainer tab.</li>"
    "<li><b>Download weights</b> from the model URL in Settings.</li></ol>"
)


class ModelPanel(QFrame):
    import_requested = Signal()
    train_requested = Signal()
    download_requested = Signal()
    encoder_download_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.state = "missing"
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.import_button = QPushButton("Import checkpoint…", self)
        self.train_button = QPushButton("Train one", self)
        self.download_button = QPushButton("Download weights…", self)
        self.encoder_button = QPushButton("Download encoder weights…", self)
        self.import_button.clicked.connect(self.import_requested)
        self.train_button.clicked.connect(self.train_requested)
        self.download_button.clicked.connect(self.download_requested)
        self.encoder_button.clicked.connect(self.encoder_download_requested)
        buttons = QHBoxLayout()
        for b in (self.import_button, self.train_button, self.download_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.encoder_button)
        layout.addLayout(buttons)
        self.set_state("missing", "")

    def set_state(self, state: str, message: str) -> None:
        """``state``: ready, loading, missing, weights (encoder weights absent) or invalid."""
        self.state = state
        self.setVisible(state != "ready")
        self.encoder_button.setVisible(state == "weights")
        for b in (self.import_button, self.train_button, self.download_button):
            b.setVisible(state != "loading")
        if state == "loading":
            self.text.setText(f"<b>Loading the model…</b><br>{_escape(message)}")
        elif state == "missing":
            detail = "" if message == "no model yet" else f"<br>{_escape(message)}"
            self.text.setText(f"<b>No model yet.</b>{detail}<br>{WAYS}")
        else:
            title = (
                "The image encoder's weights are missing."
                if state == "weights"
                else ("The model could not be loaded.")
            )
            self.text.setText(f"<b>{title}</b><br>{_escape(message)}<br>{WAYS}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def download_model(window: MainWindow) -> None:
    """The third way: fetch the checkpoint at the settings' model URL, after asking, behind a
    progress dialog with Cancel; the window then uses it (and saves it in the settings)."""
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
    dialog = QProgressDialog(f"Downloading {url}…", "Cancel", 0, 1000, window)
    dialog.setWindowTitle("Download model")
    dialog.setMinimumDuration(0)

    def downloaded(path: Path) -> None:
        dialog.reset()
        window.notify(f"downloaded the model to {path}")
        window.apply_settings(dataclasses.replace(window.settings, checkpoint=str(path)))

    def failed(message: str) -> None:
        if dialog.wasCanceled():
            window.notify("download cancelled; nothing was kept")
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
