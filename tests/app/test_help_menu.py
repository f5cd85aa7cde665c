"""The Help menu (offscreen): the shortcuts come from the window's own actions, the usage is the
README's section, About names the version, the model, the engine and the folders, and Copy
diagnostics puts the whole summary on the clipboard."""

import pytest

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from app.help_menu import shortcut_rows, shortcuts_dialog, usage_text  # noqa: E402


def test_help_lists_the_shortcuts_and_the_usage(make_window, tmp_path):
    window = make_window()
    rows = dict(shortcut_rows(window.menu_actions))
    assert rows["Predict selected"] == "Ctrl+P" and rows["Open track"] == "Ctrl+T"
    assert rows["Undo"] == "Ctrl+Z" and "Redo" in rows
    table = shortcuts_dialog(window, window.menu_actions).findChild(type(window.details.candidates))
    assert table.rowCount() == len(rows)
    assert set(window.help_actions) == {"shortcuts", "usage", "about", "diagnostics"}
    usage = usage_text()
    assert usage.startswith("## Using the app") and "Geotag from GPS tracks" in usage
    assert "## Command line" not in usage  # the section only
    missing = usage_text(tmp_path / "nowhere.md")
    assert missing.startswith("The full guide is in")


def test_about_names_the_version_model_engine_and_folders(qtbot, make_window, tmp_path):
    from PySide6.QtGui import QIcon, QPixmap
    from PySide6.QtWidgets import QApplication, QDialog, QLabel

    import locdiff_core

    before = QApplication.windowIcon()
    pixmap = QPixmap(32, 32)
    pixmap.fill()
    QApplication.setWindowIcon(QIcon(pixmap))
    try:
        window = make_window()
        window.help_actions["about"].trigger()  # opened with open(): it does not block
        dialog = next(
            d for d in window.findChildren(QDialog) if d.windowTitle().startswith("About")
        )
        assert dialog.isVisible()
        label = dialog.findChild(QLabel, "about-text")
        text = label.text()
        assert f"LocDiff Studio {locdiff_core.__version__}" in text
        for row in ("torch", "CUDA", "open_clip", "Qt", "Model", "Engine", "Data folder"):
            assert f"<b>{row}</b>" in text
        assert str(tmp_path / "data") in text and "GeoCLIP (no checkpoint)" in text
        assert label.textInteractionFlags() & label.textInteractionFlags().TextSelectableByMouse
        assert any(not w.pixmap().isNull() for w in dialog.findChildren(QLabel))
        dialog.close()
    finally:
        QApplication.setWindowIcon(before)


def test_copy_diagnostics_puts_the_model_and_engine_on_the_clipboard(
    qtbot, make_window, tiny_checkpoint
):
    from app_helpers import wait_model
    from PySide6.QtGui import QGuiApplication

    from app.model.model_info import AUTO, choice_label
    from app.model.settings import Settings

    window = make_window(Settings(tile_url="", checkpoint=str(tiny_checkpoint)))
    wait_model(qtbot, window)
    window.help_actions["diagnostics"].trigger()
    copied = QGuiApplication.clipboard().text()
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in copied.splitlines()}
    assert lines["Model"] == str(tiny_checkpoint)
    assert lines["Engine"] == choice_label(AUTO, window.model_info)
    assert lines["Engine"].startswith("Auto: ")
    assert lines["Model state"].startswith("ready")
    assert "LocDiff Studio" in lines and "Session file" in lines
    assert "clipboard" in window.notices[-1]


def test_an_empty_list_says_how_to_add_photos(qtbot, make_window, tmp_path):
    from app_helpers import make_photos

    from app.widgets.photo_list import EMPTY_TEXT, FILTERED_TEXT

    window = make_window()
    hint = window.photo_list.empty
    assert hint.isVisible() and hint.text() == EMPTY_TEXT
    window.add_paths(make_photos(tmp_path / "p", 2))
    qtbot.waitUntil(window.loading_done, timeout=20_000)
    assert not hint.isVisible()
    window.photo_list.filter_box.setCurrentText("Errors")
    assert hint.isVisible() and hint.text() == FILTERED_TEXT
