"""Candidates you can use (offscreen): a click on a candidate's circle selects it in the details,
any candidate can be accepted (and undone), the line from the file's GPS to the guess is drawn,
and a selection already on screen keeps the user's zoom."""

import pytest
from app_helpers import add_photos, map_state, predict_and_wait, wait_loaded, wait_model

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")


def test_any_candidate_is_accepted_and_the_exif_line_drawn(
    qtbot, make_window, fast_settings, gps_photos
):
    window = make_window(fast_settings)
    wait_model(qtbot, window)
    add_photos(qtbot, window, gps_photos[:2])
    wait_loaded(qtbot, window)
    predict_and_wait(qtbot, window, window.session.keys())
    photo = window.session.photos[0]
    window.photo_list.select_keys([photo.key])
    qtbot.waitUntil(lambda: window.details.key == photo.key, timeout=5_000)
    qtbot.waitUntil(lambda: window.views.idle, timeout=5_000)
    state = map_state(qtbot, window)
    assert state["link"] == 2  # the file's GPS to the best guess
    assert len(state["candidates"]) == len(photo.prediction.candidates)
    rank = len(photo.prediction.candidates) - 1
    assert not window.details.candidate_button.isEnabled()
    window.map.candidateClicked.emit(rank)  # what a click on its circle sends
    assert window.details.candidates.selectionModel().selectedRows()[0].row() == rank
    window.details.candidate_button.click()
    lat, lon, _ = photo.prediction.candidates[rank]
    assert photo.confirmed == (lat, lon) and photo.confirmed_from == "a guess"
    assert window.edits.undo_text() == f"Accept candidate #{rank + 1} for {photo.name}"
    window.edits.stack.undo()
    assert photo.confirmed is None


def settled_view(qtbot, window) -> dict:
    """The map's view once two reads 300 ms apart agree (an animated fit has ended)."""
    view = map_state(qtbot, window)["view"]
    for _ in range(30):
        qtbot.wait(300)
        again = map_state(qtbot, window)["view"]
        if again == view:
            return view
        view = again
    raise AssertionError(f"the map's view kept changing: {view}")


def test_a_selection_on_screen_keeps_the_zoom(qtbot, make_window, gps_photos):
    window = make_window()
    add_photos(qtbot, window, gps_photos[:3])
    wait_loaded(qtbot, window)
    a, b, _ = window.session.photos
    window.photo_list.select_keys([a.key])
    qtbot.waitUntil(lambda: window._current == a.key, timeout=5_000)
    qtbot.waitUntil(lambda: window.views.idle, timeout=5_000)
    before = settled_view(qtbot, window)  # the fit's animation has ended
    assert before["zoom"] >= 5  # fitted to the photo from the world view
    zoomed = []
    window.map.evaluate(f"locdiff.map.setView([{a.exif[0]}, {a.exif[1]}], 7); 1", zoomed.append)
    qtbot.waitUntil(lambda: bool(zoomed), timeout=5_000)
    assert settled_view(qtbot, window)["zoom"] == 7  # the user's zoom, before the next pick
    window.photo_list.select_keys([b.key])  # taken nearby: on screen, so the view stays
    qtbot.waitUntil(lambda: window._current == b.key, timeout=5_000)
    qtbot.waitUntil(lambda: window.views.idle, timeout=5_000)
    assert map_state(qtbot, window)["view"]["zoom"] == 7
