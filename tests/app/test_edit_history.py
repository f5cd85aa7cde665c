"""Undo and redo of location edits in the window (offscreen): each kind of edit, a batch as one
command, the names in the Edit menu, and file writes keeping their own undo."""

import pytest
from app_helpers import make_photos

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")


@pytest.fixture
def window(qtbot, make_window, tmp_path):
    window = make_window()
    window.add_paths(make_photos(tmp_path / "p", 3))
    qtbot.waitUntil(window.loading_done, timeout=20_000)
    return window


def confirmed(window):
    return [p.confirmed for p in window.session.photos]


def select_all(qtbot, window):
    keys = window.session.keys()
    window.photo_list.select_keys(keys)
    qtbot.waitUntil(lambda: window._selected == keys, timeout=5_000)
    return keys


def test_each_edit_undoes_and_redoes_with_its_name(qtbot, window):
    keys = select_all(qtbot, window)
    undo, redo = window.menu_actions["undo"], window.menu_actions["redo"]
    assert not undo.isEnabled()
    window.prompts.coordinates_answer = (48.8582, 2.2945)
    window.set_coordinates()  # a batch of three
    assert confirmed(window) == [(48.8582, 2.2945)] * 3
    assert undo.text() == "Undo Set coordinates of 3 photos"
    window.map.pinMoved.emit(keys[1], 45.0, 9.0)  # a drag
    assert undo.text() == "Undo Move photo0001.jpg"
    window.clear_confirmation()
    assert confirmed(window) == [None] * 3
    undo.trigger()
    assert confirmed(window) == [(48.8582, 2.2945), (45.0, 9.0), (48.8582, 2.2945)]
    undo.trigger()
    assert confirmed(window) == [(48.8582, 2.2945)] * 3
    assert redo.text() == "Redo Move photo0001.jpg"
    undo.trigger()
    assert confirmed(window) == [None] * 3 and not undo.isEnabled()
    redo.trigger()
    redo.trigger()
    assert confirmed(window)[1] == (45.0, 9.0)
    window.accept_best()  # nothing to accept: no command
    assert undo.text() == "Undo Move photo0001.jpg"


def test_place_found_and_right_click_are_edits_too(qtbot, window):
    keys = select_all(qtbot, window)
    window.show_place(43.46, 11.88, "Arezzo, Tuscany, Italy")
    window.place_selected_at_found()
    assert window.edits.undo_text() == "Place 3 photos at Arezzo, Tuscany, Italy"
    window.photo_list.select_keys([keys[0]])
    qtbot.waitUntil(lambda: window._current == keys[0], timeout=5_000)
    window.map.locationRequested.emit(10.0, 20.0)
    assert window.edits.undo_text() == "Set location of photo0000.jpg"
    window.edits.stack.undo()
    window.edits.stack.undo()
    assert confirmed(window) == [None] * 3
