"""The model panel: says which model predicts, or, with none yet, the ways to get one.

Without a model the app still opens, lists photos and shows their EXIF locations on the map;
this panel explains the ways to a model: get the pretrained one (GeoCLIP: the CLIP ViT-L/14
image encoder weights are downloaded, its heads are installed already), import a checkpoint
(a file dialog), train one (the Trainer tab), or download weights (from the URL in Settings).
When a checkpoint's image-encoder weights are what is missing, it offers to download those.
A weights download shows its progress here, with Cancel, while the window stays usable.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from app.model.model_info import (
    BACKBONE_SIZE,
    BACKBONE_TEXT,
    NO_MODEL,
    EncoderWanted,
    ModelInfo,
    ModelState,
    download_source,
    megabytes,
)

_OTHER_WAYS = (
    "<li><b>Import a checkpoint</b>: the <tt>checkpoint.safetensors</tt> of a training run.</li>"
    "<li><b>Train one</b> in the Trainer tab.</li>"
    "<li><b>Download weights</b> from the model URL in Settings.</li>"
)
_PHOTOS_ALREADY = "Photos and their EXIF locations already show on the map."


def ways_text(first_run: bool) -> str:
    """The ways to a model; on the first run the pretrained model comes first."""
    pretrained = ""
    if first_run:
        pretrained = (
            "<li><b>Get the pretrained model</b> (GeoCLIP; recommended): downloads the "
            f"{BACKBONE_TEXT}, {BACKBONE_SIZE}, once, from {_escape(download_source())}. "
            "GeoCLIP's heads are already installed.</li>"
        )
    return (
        f"{_PHOTOS_ALREADY} To predict where the others were taken, get a model in one of "
        f"these ways:<ol>{pretrained}{_OTHER_WAYS}</ol>"
    )


class ModelPanel(QFrame):
    import_requested = Signal()
    train_requested = Signal()
    download_requested = Signal()
    weights_requested = Signal()  # get the missing encoder weights (the pretrained model)
    cancel_download_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.state, self.info, self._message = ModelState.MISSING, NO_MODEL, "no model yet"
        self.text = _label(self)
        self.note = _label(self)  # what a cancelled or failed download kept
        self.weights_button = QPushButton("Get the pretrained model…", self)
        self.weights_button.setDefault(True)
        self.import_button = QPushButton("Import checkpoint…", self)
        self.train_button = QPushButton("Train one", self)
        self.download_button = QPushButton("Download weights…", self)
        self.weights_button.clicked.connect(self.weights_requested)
        self.import_button.clicked.connect(self.import_requested)
        self.train_button.clicked.connect(self.train_requested)
        self.download_button.clicked.connect(self.download_requested)
        self._build_download_row()
        buttons = QHBoxLayout()
        for b in (self.import_button, self.train_button, self.download_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.weights_button)
        layout.addWidget(self.download_text)
        layout.addLayout(self.download_row)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.downloading = False
        self.download_ended("")  # hides the progress row and shows the state

    def _build_download_row(self) -> None:
        self.download_text = _label(self)
        self.download_bar = QProgressBar(self)
        self.download_bar.setRange(0, 1000)
        self.download_bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_download_requested)
        self.download_row = QHBoxLayout()
        self.download_row.addWidget(self.download_bar, 1)
        self.download_row.addWidget(self.cancel_button)
        self._download_total = 0

    def set_state(self, state: ModelState, message: str, info: ModelInfo = NO_MODEL) -> None:
        """Show ``state`` and ``message``; ``info.wanted``: the weights a download can fetch,
        if any."""
        state = ModelState(state)
        self.state, self.info, self._message = state, info, message
        self.setVisible(state is not ModelState.READY or self.downloading)
        wanted = info.wanted if state in (ModelState.MISSING, ModelState.WEIGHTS) else None
        self._show_weights_button(wanted)
        for b in (self.import_button, self.train_button, self.download_button):
            b.setVisible(state is not ModelState.LOADING)
        self.text.setText(self._describe(state, message, wanted))

    def _describe(self, state: ModelState, message: str, wanted: EncoderWanted | None) -> str:
        detail = "" if message in ("", "no model yet") else f"<br>{_escape(message)}"
        if state is ModelState.LOADING:
            return f"<b>Loading the model…</b>{detail}"
        first_run = state is ModelState.MISSING and wanted is not None and wanted.is_backbone
        if state is ModelState.MISSING:
            return f"<b>No model yet.</b>{detail}<br>{ways_text(first_run)}"
        if state is ModelState.WEIGHTS:
            fetch = ""
            if wanted is not None:
                fetch = (
                    f"<br><b>{wanted.title}</b> fetches {_escape(wanted.what)} from "
                    f"{_escape(download_source())}."
                )
            title = "The image encoder's weights are missing."
            return f"<b>{title}</b>{detail}{fetch}<br>{ways_text(False)}"
        return f"<b>The model could not be loaded.</b>{detail}<br>{ways_text(False)}"

    def _show_weights_button(self, wanted: EncoderWanted | None) -> None:
        self.weights_button.setVisible(wanted is not None and not self.downloading)
        if wanted is not None:
            self.weights_button.setText(f"{wanted.title}…")

    # -- a weights download in progress (app.downloads) --------------------------------
    def download_started(self, wanted: EncoderWanted) -> None:
        self.downloading = True
        self._download_what = wanted.what
        self._download_total = 0
        self.note.hide()
        self.weights_button.hide()
        self.download_bar.setValue(0)
        self.download_text.setText(f"Downloading {_escape(wanted.what)}…")
        for w in (self.download_text, self.download_bar, self.cancel_button):
            w.show()
        self.cancel_button.setEnabled(True)
        self.show()

    def download_progress(self, done: int, total: int) -> None:
        """``done`` of ``total`` bytes (kept bytes of a resumed download included)."""
        self._download_total = total or self._download_total
        if total:
            self.download_bar.setValue(round(1000 * done / total))
        self.download_text.setText(
            f"Downloading {_escape(self._download_what)}… {megabytes(done)} of {megabytes(total)}"
        )

    def download_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.download_text.setText("Cancelling the download…")

    @property
    def download_total(self) -> int:
        """The size announced for the running (or last) download; 0 while unknown."""
        return self._download_total

    def download_ended(self, note: str) -> None:
        """Hide the progress; ``note`` (may be "") says what was kept and what to do next."""
        self.downloading = False
        for w in (self.download_text, self.download_bar, self.cancel_button):
            w.hide()
        self.note.setText(_escape(note))
        self.note.setVisible(bool(note))
        self.set_state(self.state, self._message, self.info)


def _label(parent) -> QLabel:
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def _escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\n", "<br>")
