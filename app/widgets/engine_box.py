"""The toolbar's engine choice: Auto, and the engines the loaded model offers.

Auto names what it picks (the hybrid when a LocDiffusion checkpoint on CLIP ViT-L/14 openai is
loaded, GeoCLIP without a checkpoint, LocDiffusion for a checkpoint on another encoder). A
saved choice the model cannot run stays listed, marked, so the user sees why predicting is
refused; without a model there is nothing to choose between and the box is disabled.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from app.model.model_info import AUTO, ModelInfo, choice_label

TIP = (
    "Which engine predicts. GeoCLIP: retrieval over its 100,000 places. LocDiffusion: the "
    "checkpoint's diffusion model. LocDiff-H (hybrid): LocDiffusion narrows the regions, "
    "GeoCLIP picks the place within them. Auto: the best this model offers."
)


class EngineBox(QWidget):
    chosen = Signal(str)  # a Settings.engine value, when the user picks one

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.combo = QComboBox(self)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setToolTip(TIP)
        self.combo.activated.connect(lambda i: self.chosen.emit(self.combo.itemData(i)))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(QLabel("Engine:", self))
        layout.addWidget(self.combo)
        self.show_choices(AUTO, ModelInfo())

    def show_choices(self, choice: str, info: ModelInfo) -> None:
        """List Auto and ``info.engines`` and select ``choice``."""
        self.combo.blockSignals(True)
        self.combo.clear()
        for value in (AUTO, *info.engines):
            self.combo.addItem(choice_label(value, info), value)
        if self.combo.findData(choice) < 0:
            marked = " (not offered by this model)" if info.engines else ""
            self.combo.addItem(choice_label(choice, info) + marked, choice)
        self.combo.setCurrentIndex(self.combo.findData(choice))
        self.combo.blockSignals(False)
        self.combo.setEnabled(bool(info.engines))

    def current_choice(self) -> str:
        return self.combo.currentData()
