import math

import numpy as np
import pytest

pytest.importorskip("pyqtgraph", reason="pyqtgraph cannot load here")
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load here")

from PySide6.QtCore import QPointF
from PySide6.QtTest import QTest

from app.map.density_view import DensityView

pytestmark = pytest.mark.display


def _grid(height=90, width=180) -> np.ndarray:
    lat = 90.0 - (np.arange(height) + 0.5) * 180.0 / height
    lon = -180.0 + (np.arange(width) + 0.5) * 360.0 / width
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return 5.0 * np.exp(-((la - 40.0) ** 2 + (lo - 10.0) ** 2) / 300.0) + 1e-6 * (la + 91)


@pytest.fixture
def view(qtbot):
    v = DensityView()
    qtbot.addWidget(v)
    v.resize(720, 420)
    v.show()
    qtbot.waitExposed(v)
    qtbot.wait(50)  # let the plot take its final size before mapping coordinates
    return v


def _move_to(view: DensityView, qtbot, lat: float, lon: float) -> None:
    qtbot.wait(20)  # a new title changes the layout: map coordinates after it settles
    vb = view.plot.getPlotItem().vb
    point = view.plot.mapFromScene(vb.mapViewToScene(QPointF(lon, lat)))
    QTest.mouseMove(view.plot.viewport(), point)


def test_cursor_readout_is_the_grid_value_under_the_cursor(view, qtbot):
    grid = _grid()
    view.set_density(grid, "IMG_0001.jpg")
    for lat, lon in [(40.0, 10.0), (-33.0, 151.0), (70.0, -120.0)]:
        with qtbot.waitSignal(view.cursorMoved, timeout=2000) as moved:
            _move_to(view, qtbot, lat, lon)
        got_lat, got_lon, value = moved.args
        assert got_lat == pytest.approx(lat, abs=2.0) and got_lon == pytest.approx(lon, abs=2.0)
        row = int((90.0 - got_lat) // 2.0)  # 2-degree cells, row 0 = north
        col = int((got_lon + 180.0) // 2.0)
        assert value == grid[row, col]
        assert view.readout.text() == f"{got_lat:.3f}, {got_lon:.3f}: {grid[row, col]:.4g} per sr"


def test_image_is_north_up_and_log_scaled(view):
    grid = _grid()
    view.set_density(grid)
    shown = view.image.image  # what pyqtgraph draws, row 0 at the bottom (south)
    peak_row, peak_col = np.unravel_index(np.nanargmax(shown), shown.shape)
    assert (89 - peak_row, peak_col) == np.unravel_index(np.argmax(grid), grid.shape)
    top = math.log10(grid.max())
    assert np.nanmax(shown) == pytest.approx(top)
    assert np.isnan(shown).any()  # negligible cells are left transparent
    assert view.color_bar.levels() == pytest.approx((top - 3.0, top))
    view.set_log_scale(False)
    assert np.nanmax(view.image.image) == pytest.approx(grid.max())
    assert view.color_bar.levels() == pytest.approx((0.0, grid.max()))


def test_world_outlines_and_aspect(view):
    x, y = view.outlines.getData()
    assert len(x) > 10000 and np.nanmin(x) >= -180 and np.nanmax(y) <= 90
    assert view.plot.getPlotItem().vb.state["aspectLocked"] == 1.0


def test_markers_and_clearing(view):
    view.set_markers([(40.0, 10.0, "best"), (41.0, 12.0, "exif"), (-3.0, 37.0, "candidate")])
    points = view.markers.points()
    assert [(p.pos().x(), p.pos().y(), p.data()) for p in points] == [
        (10.0, 40.0, "best"),
        (12.0, 41.0, "exif"),
        (37.0, -3.0, "candidate"),
    ]
    with pytest.raises(ValueError, match="unknown marker kind"):
        view.set_markers([(0.0, 0.0, "guess")])
    view.set_density(_grid())
    view.set_density(None)
    assert view.image.image is None
    assert math.isnan(view.value_at(0.0, 0.0))


def test_bad_grid_is_a_clear_error(view):
    with pytest.raises(ValueError, match="grid"):
        view.set_density(np.ones(10))


@pytest.mark.parametrize("size", [(590, 700), (720, 420), (1200, 300)])
def test_the_whole_world_shows_at_any_size(qtbot, size):
    v = DensityView()
    qtbot.addWidget(v)
    v.resize(*size)
    v.show()
    qtbot.waitExposed(v)
    qtbot.wait(50)
    (x0, x1), (y0, y1) = v.plot.getPlotItem().vb.viewRange()
    assert x0 <= -180 and x1 >= 180 and y0 <= -90 and y1 >= 90
