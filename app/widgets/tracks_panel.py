"""The tracks panel: the open GPS tracks (each with its time range and a toggle), the camera's
clock (time zone and offset), the matching rules, and what matching found.

Every change emits :attr:`TracksPanel.options_changed` at once, so the proposed pins move while
the user types an offset or steps it; nothing is written until proposals are accepted and
written. The panel holds no tracks itself: :mod:`app.track_geotag` shows them with
:meth:`TracksPanel.show_tracks`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model.geotagging import GeotagOptions, TrackLine
from locdiff_core.photo.photo_time import format_offset, parse_offset

AUTOMATIC = "Automatic"
TRACK_ROLE = Qt.ItemDataRole.UserRole + 1
OFFSET_STEP_S = 60  # what the -/+ buttons add
_BAD_INPUT = "QLineEdit { background: #ffe3e3; }"


def _swatch(colour: str) -> QPixmap:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(colour))
    return pixmap


class TracksPanel(QWidget):
    options_changed = Signal(object)  # GeotagOptions
    track_toggled = Signal(int, bool)  # track id, visible
    remove_requested = Signal(list)  # track ids
    fit_requested = Signal(list)  # track ids
    open_requested = Signal()
    accept_all_requested = Signal()
    offset_from_photo_requested = Signal()

    def __init__(self, options: GeotagOptions | None = None, parent=None) -> None:
        super().__init__(parent)
        self._options = options or GeotagOptions()
        self._offset_problem = ""
        self.tracks = QListWidget(self)
        self.tracks.setMaximumHeight(110)
        self.tracks.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.tracks.itemChanged.connect(self._item_changed)
        self.tracks.itemDoubleClicked.connect(
            lambda item: self.fit_requested.emit([item.data(TRACK_ROLE)])
        )
        open_button = QPushButton("Open track…", self)
        open_button.clicked.connect(self.open_requested)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self._selected_ids()))
        self.show_button = QPushButton("Show on map", self)
        self.show_button.clicked.connect(lambda: self.fit_requested.emit(self._selected_ids()))

        self.zone = QComboBox(self)
        self.zone.setEditable(True)
        self.zone.addItem(AUTOMATIC)
        self.zone.addItems(sorted(zoneinfo.available_timezones()))
        self.zone.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        completer = QCompleter([self.zone.itemText(i) for i in range(self.zone.count())], self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.zone.setCompleter(completer)
        self.zone.setToolTip("The camera's time zone (daylight saving follows the zone)")
        self.zone.currentTextChanged.connect(self._changed)
        self.offset = QLineEdit(format_offset(self._options.offset), self)
        self.offset.setToolTip(
            "The camera clock's error, added to its times: +hh:mm:ss, -mm:ss or seconds"
        )
        self.offset.textChanged.connect(self._changed)
        minus, plus = QToolButton(self), QToolButton(self)
        minus.setText("-1 min")
        plus.setText("+1 min")
        minus.clicked.connect(lambda: self.step_offset(-OFFSET_STEP_S))
        plus.clicked.connect(lambda: self.step_offset(OFFSET_STEP_S))
        self.max_gap = self._seconds(self._options.max_gap_s, 3600, "Nearest fix within")
        self.interpolate = self._seconds(self._options.interpolate_s, 86400, "Join fixes up to")
        self.neighbours = QCheckBox("Photos with GPS act as a track", self)
        self.neighbours.setChecked(self._options.use_neighbours)
        self.neighbours.toggled.connect(self._changed)
        self.speed = QSpinBox(self)
        self.speed.setRange(1, 1200)
        self.speed.setSuffix(" km/h")
        self.speed.setValue(round(self._options.max_speed_kmh))
        self.speed.setToolTip(
            "The fastest you travel between photos (bounds the time-aware guesses)"
        )
        self.speed.valueChanged.connect(self._changed)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.accept_button = QPushButton("Accept all from tracks", self)
        self.accept_button.clicked.connect(self.accept_all_requested)
        self.reference_button = QPushButton("Clock from selected photo", self)
        self.reference_button.setToolTip(
            "Drag the selected photo's pin to where it was taken on the track (or right-click "
            "the track there): the clock offset follows"
        )
        self.reference_button.clicked.connect(self.offset_from_photo_requested)
        self._build(open_button, minus, plus)

    def _seconds(self, value: float, most: int, tip: str) -> QSpinBox:
        box = QSpinBox(self)
        box.setRange(0, most)
        box.setSuffix(" s")
        box.setValue(round(value))
        box.setToolTip(tip)
        box.valueChanged.connect(self._changed)
        return box

    def _build(self, open_button, minus, plus) -> None:
        buttons = QHBoxLayout()
        for b in (open_button, self.remove_button, self.show_button):
            buttons.addWidget(b)
        offset_row = QHBoxLayout()
        offset_row.addWidget(self.offset, 1)
        offset_row.addWidget(minus)
        offset_row.addWidget(plus)
        form = QFormLayout()
        form.addRow("Camera zone", self.zone)
        form.addRow("Clock offset", offset_row)
        form.addRow("Nearest fix within", self.max_gap)
        form.addRow("Join fixes up to", self.interpolate)
        form.addRow("Fastest travel", self.speed)
        actions = QHBoxLayout()
        actions.addWidget(self.accept_button)
        actions.addWidget(self.reference_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(QLabel("<b>GPS tracks</b>", self))
        layout.addWidget(self.tracks)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addWidget(self.neighbours)
        layout.addWidget(self.summary)
        layout.addLayout(actions)

    # -- what the user set --------------------------------------------------------------------
    @property
    def options(self) -> GeotagOptions:
        return self._options

    def set_offset(self, offset: dt.timedelta) -> None:
        """Show ``offset`` (and emit the options with it)."""
        self.offset.setText(format_offset(offset))

    def step_offset(self, seconds: float) -> None:
        self.set_offset(self._options.offset + dt.timedelta(seconds=seconds))

    def offset_problem(self) -> str:
        """Why the offset typed is not used ("" when it is)."""
        return self._offset_problem

    def _changed(self, *_args) -> None:
        zone = self.zone.currentText().strip()
        if zone.startswith(AUTOMATIC):
            zone = ""
        elif zone not in zoneinfo.available_timezones():
            return  # being typed: the completer offers the names
        try:
            offset = parse_offset(self.offset.text())
        except ValueError as exc:
            self._offset_problem = str(exc)
            self.offset.setStyleSheet(_BAD_INPUT)
            self.offset.setToolTip(self._offset_problem)
            return
        if self._offset_problem:
            self._offset_problem = ""
            self.offset.setStyleSheet("")
            self.offset.setToolTip("The camera clock's error, added to its times")
        new = GeotagOptions(
            zone,
            offset,
            float(self.max_gap.value()),
            float(self.interpolate.value()),
            self.neighbours.isChecked(),
            float(self.speed.value()),
        )
        if new != self._options:
            self._options = new
            self.options_changed.emit(new)

    # -- what the window shows ----------------------------------------------------------------
    def show_tracks(self, lines: list[TrackLine]) -> None:
        blocker = QSignalBlocker(self.tracks)
        self.tracks.clear()
        for line in lines:
            item = QListWidgetItem(_swatch(line.colour), line.summary(), self.tracks)
            item.setData(TRACK_ROLE, line.track_id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if line.visible else Qt.CheckState.Unchecked)
            tip = [line.path, f"elevation: {'yes' if line.has_elevation else 'none'}"]
            item.setToolTip("\n".join(tip + list(line.notes)))
        del blocker
        has = bool(lines)
        self.remove_button.setEnabled(has)
        self.show_button.setEnabled(has)
        self.reference_button.setEnabled(has)

    def show_summary(self, text: str, zone: str, zone_source: str) -> None:
        """What matching found, and the zone it read the camera's times in."""
        self.summary.setText(text)
        automatic = f"{AUTOMATIC} ({zone}, {zone_source})"
        if self.zone.itemText(0) != automatic:
            blocker = QSignalBlocker(self.zone)
            self.zone.setItemText(0, automatic)
            self.zone.lineEdit().setCursorPosition(0)  # the start, "Automatic (zone", shows
            del blocker

    def _selected_ids(self) -> list[int]:
        items = self.tracks.selectedItems() or [
            self.tracks.item(i) for i in range(self.tracks.count())
        ]
        return [item.data(TRACK_ROLE) for item in items]

    def _item_changed(self, item: QListWidgetItem) -> None:
        visible = item.checkState() == Qt.CheckState.Checked
        self.track_toggled.emit(item.data(TRACK_ROLE), visible)
