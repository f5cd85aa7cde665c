"""The map's place search in the window (offscreen): a name typed, the map goes there and marks
it, *Set location here* puts the selection there; no match says so."""

import pytest
from app_helpers import make_photos, map_state

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from app.model.photo import PhotoState  # noqa: E402
from locdiff_core.earth import great_circle_distance_km  # noqa: E402


def test_search_a_place_then_set_the_selection_there(qtbot, make_window, tmp_path):
    window = make_window()
    window.add_paths(make_photos(tmp_path / "p", 2))
    qtbot.waitUntil(window.loading_done, timeout=20_000)
    assert not window.place_here.isEnabled()  # until a place is found
    window.place_selected_at_found()
    assert window.notices[-1] == "Search for a place first"
    window.place_search.edit.setText("Arezzo, Italy")
    window.place_search.search(window.place_search.edit.text())
    qtbot.waitUntil(lambda: window.found_place is not None, timeout=30_000)
    lat, lon, label = window.found_place
    assert label == "Arezzo, Tuscany, Italy"
    assert great_circle_distance_km(lat, lon, 43.46, 11.88) < 5
    state = map_state(qtbot, window)
    assert state["search"]["label"] == label
    assert state["view"]["zoom"] >= 9  # close enough to place a photo, even offline
    keys = window.session.keys()
    window.photo_list.select_keys(keys)
    qtbot.waitUntil(lambda: window._selected == keys, timeout=5_000)
    window.place_here.click()
    assert all(p.state is PhotoState.CONFIRMED for p in window.session.photos)
    assert window.session.photos[0].confirmed == (lat, lon)
    assert window.notices[-1] == "Placed 2 photos at Arezzo, Tuscany, Italy"


def test_no_match_says_so(qtbot, make_window):
    window = make_window()
    window.place_search.search("Xqzzyville")
    qtbot.waitUntil(lambda: window.place_lookup.idle, timeout=30_000)
    assert window.found_place is None
    assert "no town or city called 'Xqzzyville'" in window.place_search.message()
