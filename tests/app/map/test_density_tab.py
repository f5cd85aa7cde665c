"""The window's Density tab shows the whole world at the window's default size (offscreen)."""

import pytest

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")


def test_the_density_tab_shows_the_whole_world(qtbot, make_window):
    window = make_window()
    panel = window.map_panel
    panel.tabs.setCurrentWidget(panel.density_view)
    qtbot.waitExposed(panel.density_view)
    qtbot.wait(100)
    (x0, x1), (y0, y1) = panel.density_view.plot.getPlotItem().vb.viewRange()
    assert x0 <= -180 and x1 >= 180 and y0 <= -90 and y1 >= 90
