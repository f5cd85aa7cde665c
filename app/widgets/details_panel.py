"""The details panel: everything known about the current photo, and the buttons to settle it.

Shows the place a GPS track proposes and how its time was read (or why no track places it),
the engine that made the guess, the best guess and the engine's paper answer with their place
names, the time-aware guess (the prediction bounded by the photos taken shortly before and
after) and why it lies where it does, the ranked candidates with their shares, the 50% and 90%
radii, the EXIF location and its great-circle distance to the best guess (and to the confirmed
location), and the confirmed location. LocDiffusion's shares and radii count its samples;
GeoCLIP's and the hybrid's count probability, and the panel words them so. The buttons act on
all selected photos: accept their places from tracks or best guesses, type coordinates for
them, clear them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.model.coordinates import LatLon, format_km, format_latlon
from app.model.model_info import counts_probability, engine_label
from app.model.photo import Photo, PhotoPrediction
from app.model.session import Session, distance_km
from app.workers.loaders import ThumbnailLoader

PREVIEW_PX = 160
CENTRE_LABELS = {False: "Centre (paper)", True: "Top place (paper)"}  # by counts_probability
SHARE_HEADERS = {False: "Samples", True: "Probability"}
_CACHE = 16  # previews kept


class DetailsPanel(QWidget):
    accept_requested = Signal()
    coordinates_requested = Signal()
    clear_requested = Signal()
    candidate_accept_requested = Signal(int)  # the candidate's rank, 0 first

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.key: str | None = None
        self.selected = 0
        self._previews: dict[str, QPixmap] = {}
        self.loader = ThumbnailLoader(PREVIEW_PX, threads=1, parent=self)
        self.loader.loaded.connect(self._preview_loaded)

        self.preview = QLabel(self)
        self.preview.setFixedHeight(PREVIEW_PX)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("Select a photo to see its details", self)
        self.title.setWordWrap(True)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.engine = self._value()
        self.best = self._value()
        self.centre = self._value()
        self.radii = self._value()
        self.exif = self._value()
        self.distance = self._value()
        self.confirmed = self._value()
        self.time_guess = self._value()
        self.time_why = self._value()
        self.proposed = self._value()
        self.form = form = QFormLayout()
        form.addRow("From track", self.proposed)
        form.addRow("Predicted by", self.engine)
        form.addRow("Best guess", self.best)
        form.addRow("Time-aware guess", self.time_guess)
        form.addRow("Why", self.time_why)
        self.centre_label = QLabel(CENTRE_LABELS[False], self)
        form.addRow(self.centre_label, self.centre)
        form.addRow("Confidence", self.radii)
        form.addRow("EXIF location", self.exif)
        form.addRow("Distance", self.distance)
        form.addRow("Confirmed", self.confirmed)
        self.candidates = QTableWidget(0, 3, self)
        self.candidates.setHorizontalHeaderLabels(["Share", "Location", "Place"])
        self.candidates.verticalHeader().setVisible(True)
        self.candidates.horizontalHeader().setStretchLastSection(True)
        self.candidates.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.candidates.setMaximumHeight(140)
        self.candidates.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.candidates.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.candidates.setToolTip("Double-click a candidate to accept it")
        self.candidates.cellDoubleClicked.connect(
            lambda row, _column: self.candidate_accept_requested.emit(row)
        )
        self.candidate_button = QPushButton("Accept candidate", self)
        self.candidate_button.setToolTip("Confirm the candidate selected above")
        self.candidate_button.clicked.connect(self._accept_selected_candidate)
        self.candidate_button.setEnabled(False)
        self.candidates.itemSelectionChanged.connect(
            lambda: self.candidate_button.setEnabled(bool(self.candidates.selectedItems()))
        )
        self.accept_button = QPushButton("Accept best guess", self)
        self.coords_button = QPushButton("Set coordinates…", self)
        self.clear_button = QPushButton("Clear confirmation", self)
        self.accept_button.clicked.connect(self.accept_requested)
        self.coords_button.clicked.connect(self.coordinates_requested)
        self.clear_button.clicked.connect(self.clear_requested)
        buttons = QHBoxLayout()
        for b in (self.accept_button, self.coords_button, self.clear_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.preview)
        layout.addWidget(self.title)
        layout.addWidget(self.status)
        layout.addLayout(form)
        layout.addWidget(QLabel("Candidates", self))
        layout.addWidget(self.candidates)
        layout.addWidget(self.candidate_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self.refresh()

    def show_candidate(self, rank: int) -> None:
        """Select candidate ``rank`` in the table (a click on its circle on the map)."""
        if 0 <= rank < self.candidates.rowCount():
            self.candidates.selectRow(rank)
            self.candidates.scrollToItem(self.candidates.item(rank, 0))

    def _accept_selected_candidate(self) -> None:
        rows = self.candidates.selectionModel().selectedRows()
        if rows:
            self.candidate_accept_requested.emit(rows[0].row())

    def _value(self) -> QLabel:
        label = QLabel(self)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def show_photo(self, key: str | None, selected: int) -> None:
        self.key, self.selected = key, selected
        self.refresh()

    def refresh(self) -> None:
        photo = None if self.key is None else self.session.photo(self.key)
        for b in (self.accept_button, self.coords_button, self.clear_button):
            b.setEnabled(photo is not None)
        if photo is None:
            self.title.setText("Select a photo to see its details")
            self.preview.clear()
            for label in (self.status, self.engine, self.best, self.centre, self.radii, self.exif):
                label.clear()
            self.distance.clear()
            self.confirmed.clear()
            self._show_time(None)
            self.candidates.setRowCount(0)
            self._hide_empty_rows()
            return
        more = f" (and {self.selected - 1} more selected)" if self.selected > 1 else ""
        self.title.setText(f"<b>{photo.name}</b>{more}")
        self.title.setToolTip(str(photo.path))
        self.status.setText(photo.status_text())
        self._show_preview(photo)
        self._show_prediction(photo)
        self._show_time(photo)
        self.exif.setText(self._place_text(photo.exif) if photo.exif else "none in the file")
        if photo.gps_note:
            self.exif.setText(f"unreadable: {photo.gps_note}")
        elif photo.exif_written_from:
            self.exif.setText(
                f"{self.exif.text()}<br>written by LocDiff Studio from {photo.exif_written_from}"
            )
        self.confirmed.setText(
            self._place_text(photo.confirmed) if photo.confirmed else "not confirmed"
        )
        self.distance.setText(self._distances(photo))
        self.accept_button.setEnabled(photo.prediction is not None or photo.proposed is not None)
        self.accept_button.setText(
            "Accept from track" if photo.proposed is not None else "Accept best guess"
        )
        self.clear_button.setEnabled(photo.confirmed is not None or self.selected > 1)
        self._hide_empty_rows()

    def _hide_empty_rows(self) -> None:
        """Rows with nothing to say take no room (the column is short beside the model panel)."""
        for row in range(self.form.rowCount()):
            item = self.form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            label = item.widget() if item is not None else None
            if isinstance(label, QLabel):
                self.form.setRowVisible(row, bool(label.text()))

    def _show_prediction(self, photo: Photo) -> None:
        pred = photo.prediction
        if pred is None:
            self.best.setText("not predicted yet")
            for label in (self.engine, self.centre, self.radii):
                label.clear()
            self.candidates.setRowCount(0)
            self.candidates.horizontalHeaderItem(0).setText("Share")
            return
        self._word_for(pred)
        model = f" \u00b7 {pred.model}" if pred.model else ""
        self.engine.setText(engine_label(pred.engine) + model)
        self.best.setText(self._place_text(pred.best))
        self.centre.setText(self._place_text(pred.centre))
        self.candidates.clearSelection()
        self.candidates.setRowCount(len(pred.candidates))
        for row, (lat, lon, share) in enumerate(pred.candidates):
            cells = (f"{share:.0%}", format_latlon(lat, lon, 3), self._place(lat, lon))
            for column, text in enumerate(cells):
                self.candidates.setItem(row, column, QTableWidgetItem(text))

    def _show_time(self, photo: Photo | None) -> None:
        """The track's proposal, and the time-aware guess beside the model's."""
        proposed = None if photo is None else photo.proposed
        if proposed is not None:
            alt = f", {proposed.alt:.0f} m" if proposed.alt is not None else ""
            when = f"<br>time: {proposed.time}" if proposed.time else ""
            self.proposed.setText(
                f"{self._place_text(proposed.point)}{alt}<br>{proposed.source}{when}"
            )
        else:
            self.proposed.setText("" if photo is None else photo.track_note or "")
        guess = None if photo is None else photo.time_guess
        if guess is None or photo.prediction is None:
            self.time_guess.clear()
            self.time_why.clear()
            return
        moved = distance_km(guess.best, photo.prediction.best)
        self.time_guess.setText(
            f"{self._place_text(guess.best)}<br>50% within {format_km(guess.radius50_km)}, "
            f"90% within {format_km(guess.radius90_km)}; "
            f"{format_km(moved)} from the model's best guess"
        )
        why = guess.why[:1].upper() + guess.why[1:]
        if guess.model_share >= 0.05:
            why += f"; the model put {guess.model_share:.0%} of its probability inside"
        self.time_why.setText(why + ".")

    def _word_for(self, pred: PhotoPrediction) -> None:
        """The labels that differ between samples (LocDiffusion) and probability (the rest)."""
        probability = counts_probability(pred.engine)
        what = "of the probability" if probability else "of samples"
        self.radii.setText(
            f"50% {what} within {format_km(pred.radius50_km)}, "
            f"90% within {format_km(pred.radius90_km)}"
        )
        self.centre_label.setText(CENTRE_LABELS[probability])
        self.candidates.horizontalHeaderItem(0).setText(SHARE_HEADERS[probability])

    def _distances(self, photo: Photo) -> str:
        if photo.exif is None or photo.exif_written_from:  # our own write is no evidence
            return ""
        parts = []
        for name, point in (
            ("best guess", photo.prediction.best if photo.prediction else None),
            ("confirmed", photo.confirmed),
        ):
            if point is None:
                continue
            parts.append(f"{name}: {format_km(distance_km(point, photo.exif))} from EXIF")
        return "; ".join(parts)

    def _place(self, lat: float, lon: float) -> str:
        place = self.session.place_at(lat, lon)
        return "looking up…" if place is None else place

    def _place_text(self, point: LatLon) -> str:
        return f"{format_latlon(*point)}<br><i>{self._place(*point)}</i>"

    # -- preview ---------------------------------------------------------------------------
    def _show_preview(self, photo: Photo) -> None:
        pixmap = self._previews.get(photo.key)
        if pixmap is not None:
            self.preview.setPixmap(pixmap)
            return
        self.preview.clear()
        if photo.load_error is None:
            self.loader.request([(photo.key, str(photo.path))])

    def _preview_loaded(self, key: str, image: QImage) -> None:
        if len(self._previews) >= _CACHE:
            self._previews.pop(next(iter(self._previews)))
        self._previews[key] = QPixmap.fromImage(image)
        if key == self.key:
            self.preview.setPixmap(self._previews[key])
