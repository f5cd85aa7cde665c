"""Actions are enabled only when they can act, and say why not (offscreen)."""

import pytest
from app_helpers import make_photos

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")


def test_actions_follow_what_can_be_done(qtbot, make_window, tmp_path):
    window = make_window()
    actions, states = window.menu_actions, window.action_states
    for name in ("predict_selected", "predict_all", "write_selected", "export_all", "undo_write"):
        assert not actions[name].isEnabled(), name
    assert "select photos first" in actions["predict_selected"].toolTip()
    assert "add photos first" in actions["predict_all"].toolTip()
    assert "no write of GPS positions to undo" in actions["undo_write"].toolTip()
    window.add_paths(make_photos(tmp_path / "p", 2))
    qtbot.waitUntil(window.loading_done, timeout=20_000)
    keys = window.session.keys()
    window.photo_list.select_keys(keys)
    qtbot.waitUntil(lambda: window._selected == keys, timeout=5_000)
    states.check()
    assert actions["set_coordinates"].isEnabled() and actions["remove_selected"].isEnabled()
    assert not actions["write_selected"].isEnabled()
    assert "confirm locations first" in actions["write_selected"].toolTip()
    window.session.confirm(keys[0], 1.0, 2.0)
    qtbot.waitUntil(lambda: actions["write_selected"].isEnabled(), timeout=5_000)
    assert actions["write_selected"].toolTip() == "Write confirmed locations"
    assert actions["export_all"].isEnabled() and actions["clear_confirmation"].isEnabled()
    assert states.reason("cancel_prediction") == "no prediction is running"
