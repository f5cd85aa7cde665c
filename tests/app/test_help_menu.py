"""The Help menu (offscreen): the shortcuts come from the window's own actions, the usage is the
README's section, About names the version."""

import pytest

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from app.help_menu import about_text, shortcut_rows, shortcuts_dialog, usage_text  # noqa: E402


def test_help_lists_the_shortcuts_and_the_usage(make_window, tmp_path):
    window = make_window()
    rows = dict(shortcut_rows(window.menu_actions))
    assert rows["Predict selected"] == "Ctrl+P" and rows["Open track"] == "Ctrl+T"
    assert rows["Undo"] == "Ctrl+Z" and "Redo" in rows
    table = shortcuts_dialog(window, window.menu_actions).findChild(type(window.details.candidates))
    assert table.rowCount() == len(rows)
    assert set(window.help_actions) == {"shortcuts", "usage", "about"}
    usage = usage_text()
    assert usage.startswith("## Using the app") and "Geotag from GPS tracks" in usage
    assert "## Command line" not in usage  # the section only
    missing = usage_text(tmp_path / "nowhere.md")
    assert missing.startswith("The full guide is in")
    assert "LocDiff Studio</b> 0." in about_text()


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
