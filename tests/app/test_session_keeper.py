"""The session kept across starts (offscreen): restored after a quit, the quit prompt's
answers, a crash (SIGKILL) losing at most the last second, a second window on the same
session kept in memory only, and Save session as / Open session."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from app_helpers import make_photos

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from app.model.photo import PhotoPrediction  # noqa: E402
from app.session_keeper import SAVE_MS  # noqa: E402
from locdiff_core.engines import Engine  # noqa: E402


def made_up_prediction() -> PhotoPrediction:
    return PhotoPrediction(
        (43.47, 11.88),
        (43.0, 11.0),
        ((43.47, 11.88, 0.7), (-33.45, -70.67, 0.3)),
        12.5,
        900.0,
        np.array([[43.47, 11.88], [-33.45, -70.67]]),
        np.ones((9, 18), dtype=np.float32),
        Engine.LOCDIFF,
    )


def loaded(qtbot, make_window, paths=()):
    window = make_window()
    if paths:
        window.add_paths(paths)
    qtbot.waitUntil(window.loading_done, timeout=20_000)
    return window


def test_quit_keeps_the_work_for_the_next_start(qtbot, make_window, tmp_path):
    paths = make_photos(tmp_path / "p", 3)
    first = loaded(qtbot, make_window, paths)
    a, b, _c = first.session.photos
    first.session.set_prediction(a.key, made_up_prediction())
    first.session.confirm(b.key, 45.0, 9.0)
    first.photo_list.filter_box.setCurrentText("Confirmed")
    first.close()
    assert first.prompts.asked[-1] == ("unwritten", 1)  # answered "keep"
    second = loaded(qtbot, make_window)
    assert [p.path for p in second.session.photos] == paths
    a2, b2, _ = second.session.photos
    assert a2.prediction.best == (43.47, 11.88) and a2.prediction.density.shape == (9, 18)
    assert b2.confirmed == (45.0, 9.0) and b2.confirmed_from == "a correction"
    assert second.photo_list.filter_box.currentText() == "Confirmed"
    assert any(
        n == "Restored 3 photos from the last session (1 confirmed, not yet written)"
        for n in second.notices
    )


def test_the_quit_prompt_can_cancel_or_discard(qtbot, make_window, tmp_path):
    window = loaded(qtbot, make_window, make_photos(tmp_path / "p", 2))
    key = window.session.keys()[0]
    window.session.confirm(key, 1.0, 2.0)
    window.prompts.unwritten_answer = "cancel"
    assert not window.close() and window.isVisible()
    window.prompts.unwritten_answer = "discard"
    assert window.close()
    again = loaded(qtbot, make_window)
    assert len(again.session) == 2 and again.session.photo(key).confirmed is None


CRASHING = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from app.main_window import MainWindow
    from app.model.settings import Settings
    window = MainWindow(Settings(tile_url=""), pipeline_factory=lambda *a: None)
    window.add_paths(sys.argv[1:])
    end = time.time() + 60
    while time.time() < end and not window.loading_done():
        app.processEvents(); time.sleep(0.01)
    for key in window.session.keys():
        window.session.confirm(key, 48.8582, 2.2945)
    settle = time.time() + %f
    while time.time() < settle:
        app.processEvents(); time.sleep(0.01)
    print("confirmed", flush=True)
    time.sleep(600)
    """
)


def test_a_crash_loses_at_most_the_last_second(qtbot, make_window, tmp_path):
    paths = make_photos(tmp_path / "p", 2)
    script = CRASHING % (2 * SAVE_MS / 1000)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    child = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, paths)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "confirmed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    window = loaded(qtbot, make_window)
    assert [p.confirmed for p in window.session.photos] == [(48.8582, 2.2945)] * 2


def test_a_second_window_on_the_same_session_keeps_its_work_in_memory(qtbot, make_window, tmp_path):
    first = loaded(qtbot, make_window, make_photos(tmp_path / "p", 1))
    second = loaded(qtbot, make_window)
    assert second.keeper.store is None and len(second.session) == 0
    assert "is kept by another LocDiff Studio window" in second.notices[0]
    assert first.keeper.store is not None


def test_save_as_then_open(qtbot, make_window, tmp_path):
    window = loaded(qtbot, make_window, make_photos(tmp_path / "p", 2))
    target = tmp_path / "trip.locdiff-session"
    window.prompts.session_answer = str(target)
    window.save_session_as()
    assert window.notices[-1] == f"Session saved as {target}" and target.is_file()
    window.session.remove(window.session.keys()[:1])  # now kept in the new file
    window.keeper.save()
    window.prompts.session_answer = str(tmp_path / "p" / "photo0000.jpg")  # not a session
    window.open_session()
    assert "not a LocDiff Studio session" in " ".join(window.notices[-3:])
    assert len(window.session) == 1  # the current one opened again
    window.prompts.session_answer = str(target)
    window.open_session()
    assert len(window.session) == 1
