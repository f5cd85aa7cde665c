"""PLACEHOLDER for the Trainer tab: it arrives with the trainer-tab work (after the distributed
trainer), which replaces this file. Until then it explains how to train from a terminal."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

TEXT = """<h3>Trainer</h3>
<p>Training from this window arrives with the trainer tab. Until then, train a model in a
terminal:</p>
<pre>locdiff train --data train/ --val val.npz --out runs/l47 --degree 47 --epochs 10</pre>
<p>then use <b>File &gt; Import checkpoint…</b> and pick the run folder.</p>"""


class TrainerTab(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        label = QLabel(TEXT, self)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        QVBoxLayout(self).addWidget(label)
