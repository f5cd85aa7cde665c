"""Dialogs: settings, typed coordinates and the write confirmation (no modal loop needed)."""

import pytest

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from PySide6.QtWidgets import QDialogButtonBox, QLabel, QListWidget  # noqa: E402

from app.model.session import WriteItem  # noqa: E402
from app.model.settings import Settings  # noqa: E402
from app.widgets.dialogs import CoordinateDialog, SettingsDialog, WriteConfirmDialog  # noqa: E402


def test_settings_dialog_round_trip(qtbot):
    start = Settings(
        checkpoint="/runs/a",
        device="cpu",
        num_samples=8,
        sampler="ddpm",
        num_steps=50,
        decode_radius_km=30.0,
        best_guess="cluster",
        engine="geoclip",
        hybrid_radius_km=120.0,
        density_map=False,
        tile_url="",
        write_backup=False,
        write_method="builtin",
        model_url="https://example.org/m.safetensors",
    )
    dialog = SettingsDialog(start)
    qtbot.addWidget(dialog)
    dialog.accept()
    assert dialog.result_settings == start
    labels = [dialog.engine.itemText(i) for i in range(dialog.engine.count())]
    assert labels == [
        "Auto (the best the model offers)",
        "GeoCLIP",
        "LocDiffusion",
        "LocDiff-H (hybrid)",
    ]


def test_settings_dialog_refuses_an_invalid_value_and_says_why(qtbot):
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.tile_url.setText("https://tiles.example/{z}/{x}.png")
    dialog.accept()
    assert dialog.result_settings is None and "{y}" in dialog.problem.text()
    dialog.tile_url.setText("")
    dialog.samples.setValue(32)
    dialog.accept()
    assert dialog.result_settings == Settings(tile_url="", num_samples=32)


def test_coordinate_dialog_checks_as_you_type(qtbot):
    dialog = CoordinateDialog("", 3)
    qtbot.addWidget(dialog)
    ok = dialog.box.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    dialog.edit.setText("48°51'29.6\"N 2°17'40.2\"E")
    assert ok.isEnabled() and dialog.value == pytest.approx((48.858222, 2.2945), abs=1e-5)
    assert dialog.feedback.text() == "48.85822° N, 2.29450° E"
    dialog.edit.setText("95, 10")
    assert not ok.isEnabled() and dialog.value is None and "swap" in dialog.feedback.text()


def test_write_confirmation_names_the_files(qtbot, tmp_path):
    items = [WriteItem(tmp_path / f"p{i}.jpg", str(i), 1.0, 2.0) for i in range(3)]
    dialog = WriteConfirmDialog(items, backup=True)
    qtbot.addWidget(dialog)
    assert dialog.backup.isChecked()
    listed = dialog.findChild(QListWidget)
    assert [listed.item(i).text().split("  ")[0] for i in range(3)] == [str(i.path) for i in items]
    assert any("into 3 photos" in lbl.text() for lbl in dialog.findChildren(QLabel))
