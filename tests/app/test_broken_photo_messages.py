"""Broken photos dropped among good ones (offscreen): the list says, for each by name, what is
wrong in plain words, and the good photos load all the same."""

from pathlib import Path

import pytest
from app_helpers import drop, make_photos, wait_added, wait_loaded

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from PySide6.QtCore import Qt  # noqa: E402

from app.model.photo import PhotoState  # noqa: E402

CUT_SHORT = (
    "the file is cut short (truncated); it may still be copying, or the card was removed too early"
)
BLANK = (225, 225, 225)  # the list's placeholder until a thumbnail arrives


def thumbnail_colour(window, key: str) -> tuple[int, int, int]:
    row = window.session.row_of(key)
    pixmap = window.table_model.item(row, 0).data(Qt.ItemDataRole.DecorationRole)
    colour = pixmap.toImage().pixelColor(pixmap.width() // 2, pixmap.height() // 2)
    return colour.red(), colour.green(), colour.blue()


def test_broken_photos_say_what_is_wrong_and_the_good_ones_load(
    qtbot, make_window, samples, tmp_path
):
    folder = tmp_path / "card"
    good = make_photos(folder, 2)
    camera = (samples / "gps" / "DSCN0010.jpg").read_bytes()
    cut = folder / "IMG_0042.jpg"
    cut.write_bytes(camera[: len(camera) // 3])  # unplugged mid-copy: EXIF whole, pixels not
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    notes = folder / "notes.jpg"
    notes.write_text("Things to pack: a charger, the spare card.\n")
    problems = {
        cut: CUT_SHORT,
        empty: "the file is empty (0 bytes)",
        notes: "not an image Pillow can read (the start of the file is text)",
    }
    window = make_window()
    assert drop(window, [folder])
    wait_added(qtbot, window)
    assert window.notices[-1] == "Added 5 photos"
    keys = {path: str(path.resolve()) for path in [*good, *problems]}
    window.photo_list.select_keys([keys[cut]])  # its thumbnail is asked for: that finds the cut
    wait_loaded(qtbot, window)
    broken = [window.session.photo(keys[p]) for p in problems]
    qtbot.waitUntil(lambda: all(photo.error for photo in broken), timeout=10_000)
    qtbot.waitUntil(lambda: all(thumbnail_colour(window, keys[p]) != BLANK for p in good))

    model = window.table_model
    for path, problem in problems.items():
        photo = window.session.photo(keys[path])
        row = window.session.row_of(photo.key)
        assert photo.state is PhotoState.ERROR
        assert model.index(row, 1).data() == path.name
        assert model.index(row, 2).data() == f"error: {problem}"
        tooltip = model.index(row, 2).data(Qt.ItemDataRole.ToolTipRole)
        assert tooltip == f"{photo.path}\nerror: {problem}"
        assert Path(tooltip.splitlines()[0]).name == path.name
    for path in good:
        photo = window.session.photo(keys[path])
        assert photo.error is None and photo.state is PhotoState.NO_LOCATION
    assert "5 photos" in window.counts.text() and "3 errors" in window.counts.text()
    assert window.prompts.errors == []  # one broken file is no reason for a message box

    window.photo_list.select_keys([keys[cut]])
    qtbot.waitUntil(lambda: window.details.status.text() == f"error: {CUT_SHORT}")
