"""The file's own GPS comes first (offscreen): a guess never displaces it, *Predict all* leaves
photos with GPS alone, and the app's own write read back is not taken for evidence."""

import pytest
from app_helpers import add_photos, make_photos, predict_and_wait, wait_loaded, wait_model

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")


def test_predict_all_leaves_gps_photos_and_a_written_guess_is_no_evidence(
    qtbot, make_window, fast_settings, gps_photos, tmp_path
):
    window = make_window(fast_settings)
    wait_model(qtbot, window)
    (plain,) = make_photos(tmp_path / "plain", 1)
    add_photos(qtbot, window, [gps_photos[0], plain])
    wait_loaded(qtbot, window)
    gps, new = window.session.photos
    assert gps.exif is not None and new.exif is None
    window.predict_all()
    assert window.notices[-1].startswith("Left out 1 photo that has GPS in the file")
    qtbot.waitUntil(lambda: new.prediction is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not window.predictor.busy, timeout=60_000)
    assert gps.prediction is None
    predict_and_wait(qtbot, window, [gps.key])  # asked for: predicted, still pinned at its GPS
    assert gps.prediction is not None and gps.location()[0] == gps.exif
    assert window.session.place_of(gps) == window.session.place_at(*gps.exif)

    window.photo_list.select_keys([new.key])
    qtbot.waitUntil(lambda: window._current == new.key, timeout=5_000)
    window.accept_best()
    window.write_selected()
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=20_000)
    qtbot.waitUntil(lambda: new.exif is not None, timeout=10_000)
    assert new.exif_written_from == "a guess"
    window.clear_confirmation()
    qtbot.waitUntil(lambda: window.views.idle, timeout=5_000)
    window.details.refresh()
    assert "written by LocDiff Studio from a guess" in window.details.exif.text()
    assert window.details.distance.text() == ""  # no "0 m from EXIF" against our own write
    assert "has EXIF GPS (written here from a guess) · written" in new.status_text()
