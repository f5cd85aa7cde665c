"""The status bar's progress: a bar, what is being done, the time left, and Cancel."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


def eta_text(fraction: float, elapsed_s: float) -> str:
    """``about 1:05 left`` once there is enough to go on (2% done or 2 s elapsed), else ``""``."""
    if fraction <= 0.0 or (fraction < 0.02 and elapsed_s < 2.0) or fraction >= 1.0:
        return ""
    left = round(elapsed_s * (1.0 - fraction) / fraction)
    hours, rest = divmod(left, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return f"about {clock} left"


class ProgressStatus(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.label = QLabel(self)
        self.label.setFixedWidth(230)  # fixed: changing text must not relayout the window
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(False)
        self.eta = QLabel(self)
        self.eta.setFixedWidth(120)
        self.cancel = QPushButton("Cancel", self)
        self.cancel.clicked.connect(self.cancel_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.bar, self.eta, self.cancel):
            layout.addWidget(w)
        self._start = 0.0
        self.hide()

    def start(self, text: str) -> None:
        self._start = time.monotonic()
        self.label.setText(text)
        self.bar.setValue(0)
        self.eta.clear()
        self.cancel.setEnabled(True)
        self.show()

    def set_progress(self, fraction: float, text: str) -> None:
        self.label.setText(text)
        self.bar.setValue(round(1000 * fraction))
        self.eta.setText(eta_text(fraction, time.monotonic() - self._start))

    def finish(self) -> None:
        self.hide()
