"""Dialogs: settings, typed coordinates, the write confirmation, and every question the window asks.

The window asks all its questions through one :class:`Prompts` object (file dialogs,
confirmations, messages), so tests swap in one that answers without a modal dialog; what the
app then does (writing files, downloading) is the real thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.model.coordinates import LatLon, format_latlon, parse_coordinates
from app.model.geotagging import TRACK_FILTER
from app.model.model_info import ENGINE_CHOICES, engine_label
from app.model.session import WriteItem
from app.model.session_store import SESSION_FILTER
from app.model.settings import (
    BEST_GUESSES,
    DEVICES,
    MAP_PACK_FILTER,
    SAMPLERS,
    WRITE_METHODS,
    Settings,
)

_SHOWN_FILES = 200  # the confirmation lists this many files by name, then a count
ENGINE_TEXTS = {"auto": "Auto (the best the model offers)"}
BEST_GUESS_TEXTS = {
    "mode": "Mode of the model's posterior",
    "cluster": "Centre of the densest cluster of samples",
}


def _buttons(dialog: QDialog) -> QDialogButtonBox:
    box = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, dialog
    )
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box


class PathField(QWidget):
    """A line edit with a Browse… button: a file matching ``name_filter``, or with no filter a
    folder. Used by the settings dialog and the Trainer tab."""

    def __init__(
        self, caption: str, name_filter: str | None = None, text: str = "", parent=None
    ) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(text, self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(lambda: self._browse(caption, name_filter))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)

    def _browse(self, caption: str, name_filter: str | None) -> None:
        if name_filter is None:
            path = QFileDialog.getExistingDirectory(self, caption, self.edit.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, caption, self.edit.text(), name_filter)
        if path:
            self.edit.setText(path)

    def text(self) -> str:
        return self.edit.text().strip()


class SettingsDialog(QDialog):
    """Edits a :class:`Settings`; OK is refused (with the reason) while a value is invalid."""

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.result_settings: Settings | None = None
        s = settings
        self.checkpoint = PathField(
            "Model checkpoint", "Checkpoints (*.safetensors)", s.checkpoint, self
        )
        self.weights = PathField("Encoder weights", "All files (*)", s.encoder_weights, self)
        self.device = self._combo(DEVICES, s.device)
        self.samples = self._spin(1, 1024, s.num_samples)
        self.sampler = self._combo(SAMPLERS, s.sampler)
        self.steps = self._spin(0, 10_000, s.num_steps, zero="sampler's default")
        self.decode_radius = self._km(s.decode_radius_km, zero="model's default")
        self.cluster_radius = self._km(s.cluster_radius_km, minimum=1.0)
        self.best_guess = QComboBox(self)
        for value in BEST_GUESSES:
            self.best_guess.addItem(BEST_GUESS_TEXTS[value], value)
        self.best_guess.setCurrentIndex(self.best_guess.findData(s.best_guess))
        self.best_guess.setToolTip(
            "LocDiffusion's best guess; candidates are always clusters of samples"
        )
        self.engine = QComboBox(self)
        for value in ENGINE_CHOICES:
            self.engine.addItem(ENGINE_TEXTS.get(value, engine_label(value)), value)
        self.engine.setCurrentIndex(self.engine.findData(s.engine))
        self.hybrid_radius = self._km(s.hybrid_radius_km, minimum=1.0)
        self.density = QCheckBox("Compute each photo's probability map (slower)", self)
        self.density.setChecked(s.density_map)
        self.tile_url = QLineEdit(s.tile_url, self)
        self.tile_url.setPlaceholderText("empty: the offline world map only")
        self.backup = QCheckBox("Keep a backup of each original (photo.jpg_original)", self)
        self.backup.setChecked(s.write_backup)
        self.undo_cleans = QCheckBox("Undo removes the backups it no longer needs", self)
        self.undo_cleans.setToolTip("Only a backup byte for byte equal to the restored photo")
        self.undo_cleans.setChecked(s.undo_removes_backups)
        self.method = self._combo(WRITE_METHODS, s.write_method)
        self.model_url = QLineEdit(s.model_url, self)
        self.model_url.setPlaceholderText("https://…/checkpoint.safetensors")
        form = QFormLayout()
        for label, widget in (
            ("Checkpoint (run folder or .safetensors)", self.checkpoint),
            ("Encoder weights file", self.weights),
            ("Device", self.device),
            ("Samples per photo (K)", self.samples),
            ("Sampler", self.sampler),
            ("Sampler steps", self.steps),
            ("Decode radius", self.decode_radius),
            ("Candidate cluster radius", self.cluster_radius),
            ("Best guess (LocDiffusion)", self.best_guess),
            ("Engine", self.engine),
            ("Hybrid radius (LocDiff-H)", self.hybrid_radius),
            ("Probability map", self.density),
            ("Map tile URL", self.tile_url),
            ("Writing GPS", self.backup),
            ("", self.undo_cleans),
            ("Writer", self.method),
            ("Model download URL", self.model_url),
        ):
            form.addRow(label, widget)
        self.problem = QLabel(self)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(_buttons(self))

    def _combo(self, choices: Sequence[str], value: str) -> QComboBox:
        box = QComboBox(self)
        box.addItems(list(choices))
        box.setCurrentText(value)
        return box

    def _spin(self, low: int, high: int, value: int, zero: str = "") -> QSpinBox:
        spin = QSpinBox(self)
        spin.setRange(low, high)
        spin.setValue(value)
        if zero:
            spin.setSpecialValueText(zero)
        return spin

    def _km(self, value: float, zero: str = "", minimum: float = 0.0) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setRange(minimum, 20_000.0)
        spin.setDecimals(1)
        spin.setSuffix(" km")
        spin.setValue(value)
        if zero:
            spin.setSpecialValueText(zero)
        return spin

    def values(self) -> dict:
        return {
            "checkpoint": self.checkpoint.text(),
            "encoder_weights": self.weights.text(),
            "device": self.device.currentText(),
            "num_samples": self.samples.value(),
            "sampler": self.sampler.currentText(),
            "num_steps": self.steps.value(),
            "decode_radius_km": self.decode_radius.value(),
            "cluster_radius_km": self.cluster_radius.value(),
            "best_guess": self.best_guess.currentData(),
            "engine": self.engine.currentData(),
            "hybrid_radius_km": self.hybrid_radius.value(),
            "density_map": self.density.isChecked(),
            "tile_url": self.tile_url.text().strip(),
            "write_backup": self.backup.isChecked(),
            "undo_removes_backups": self.undo_cleans.isChecked(),
            "write_method": self.method.currentText(),
            "model_url": self.model_url.text().strip(),
        }

    def accept(self) -> None:
        try:
            self.result_settings = dataclasses.replace(Settings(), **self.values())
        except ValueError as exc:
            self.problem.setText(f"Please fix this setting: {exc}")
            return
        super().accept()


class CoordinateDialog(QDialog):
    """Type a location: decimal degrees or degrees, minutes and seconds; checked as you type."""

    def __init__(self, initial: str, count: int, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set coordinates")
        self.value: LatLon | None = None
        what = "this photo" if count == 1 else f"these {count} photos"
        self.edit = QLineEdit(initial, self)
        self.edit.setPlaceholderText("48.8582, 2.2945  or  48°51'29.6\"N 2°17'40.2\"E")
        self.feedback = QLabel(self)
        self.feedback.setWordWrap(True)
        self.box = _buttons(self)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Location of {what} (latitude, longitude):", self))
        layout.addWidget(self.edit)
        layout.addWidget(self.feedback)
        layout.addWidget(self.box)
        self.edit.textChanged.connect(self._check)
        self._check(initial)

    def _check(self, text: str) -> None:
        ok = self.box.button(QDialogButtonBox.StandardButton.Ok)
        try:
            self.value = parse_coordinates(text)
        except ValueError as exc:
            self.value = None
            self.feedback.setText(str(exc) if text.strip() else "")
            ok.setEnabled(False)
            return
        self.feedback.setText(format_latlon(*self.value))
        ok.setEnabled(True)


class WriteConfirmDialog(QDialog):
    """Names the files a write will change, with their new positions; backups on by default."""

    def __init__(self, items: Sequence[WriteItem], backup: bool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Write locations into photos")
        n = len(items)
        intro = QLabel(
            f"Write the confirmed location into {n} photo{'s' * (n != 1)}? Only the GPS tags "
            "change; the image data and other metadata stay as they are. "
            "Edit > Undo last write puts the files back.",
            self,
        )
        intro.setWordWrap(True)
        files = QListWidget(self)
        for item in items[:_SHOWN_FILES]:
            files.addItem(f"{item.path}  →  {format_latlon(item.lat, item.lon)}")
        if n > _SHOWN_FILES:
            files.addItem(f"… and {n - _SHOWN_FILES} more")
        self.backup = QCheckBox("Keep a backup of each original (photo.jpg_original)", self)
        self.backup.setChecked(backup)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(files)
        layout.addWidget(self.backup)
        layout.addWidget(_buttons(self))
        self.resize(640, 400)


class Prompts:
    """Every question the window asks; each returns the answer (None or False: cancelled)."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def open_photos(self) -> list[str]:
        paths, _ = QFileDialog.getOpenFileNames(
            self.parent,
            "Open photos",
            "",
            "Photos (*.jpg *.jpeg *.jpe *.png *.tif *.tiff *.webp *.heic *.heif *.hif);;"
            "All files (*)",
        )
        return paths

    def open_tracks(self) -> list[str]:
        paths, _ = QFileDialog.getOpenFileNames(self.parent, "Open GPS tracks", "", TRACK_FILTER)
        return paths

    def open_map_pack(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self.parent, "Open a map pack (an offline map of a region)", "", MAP_PACK_FILTER
        )
        return path or None

    def open_folder(self) -> str | None:
        return QFileDialog.getExistingDirectory(self.parent, "Open a folder of photos") or None

    def open_checkpoint(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self.parent,
            "Import a checkpoint (checkpoint.safetensors of a training run)",
            "",
            "Checkpoints (*.safetensors);;All files (*)",
        )
        return path or None

    def save_path(self, title: str, name_filter: str, suggested: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, suggested, name_filter)
        return path or None

    def coordinates(self, initial: str, count: int) -> LatLon | None:
        dialog = CoordinateDialog(initial, count, self.parent)
        return dialog.value if dialog.exec() == QDialog.DialogCode.Accepted else None

    def confirm_write(self, items: Sequence[WriteItem], backup: bool) -> tuple[bool, bool]:
        """(go ahead, keep backups)."""
        dialog = WriteConfirmDialog(items, backup, self.parent)
        ok = dialog.exec() == QDialog.DialogCode.Accepted
        return ok, dialog.backup.isChecked()

    def confirm(self, title: str, text: str) -> bool:
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        answer = QMessageBox.question(self.parent, title, text, buttons)
        return answer == QMessageBox.StandardButton.Yes

    def unwritten(self, count: int) -> str:
        """Quitting with ``count`` confirmed locations not written: "write", "keep" (in the
        session, for next time), "discard" or "cancel"."""
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Quit")
        box.setText(
            f"{count} confirmed location{'s are' if count != 1 else ' is'} not written into "
            "the photos yet."
        )
        box.setInformativeText(
            "Keep for later saves them with the session; they are there on the next start."
        )
        write = box.addButton("Write and quit", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep for later", QMessageBox.ButtonRole.ActionRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(keep)
        box.exec()
        return {write: "write", keep: "keep", discard: "discard"}.get(box.clickedButton(), "cancel")

    def open_session(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, "Open session", "", SESSION_FILTER)
        return path or None

    def save_session(self) -> str | None:
        path, _ = QFileDialog.getSaveFileName(
            self.parent, "Save session as", "photos.locdiff-session", SESSION_FILTER
        )
        return path or None

    def settings(self, current: Settings) -> Settings | None:
        dialog = SettingsDialog(current, self.parent)
        return dialog.result_settings if dialog.exec() == QDialog.DialogCode.Accepted else None

    def error(self, title: str, text: str) -> None:
        QMessageBox.warning(self.parent, title, text)
