"""What makes the map readable: pin clusters with counts, the density legend, place names by
zoom, rivers, the scale bar and visible samples (the page's state and its pixels)."""

import numpy as np
import pytest

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWebEngineWidgets", reason="QtWebEngine cannot load here")

from test_map_view import _near, _pixel, evaluate, make_view, state, tile_server  # noqa: E402

from app.map import density_colors  # noqa: E402
from app.model.pins import CandidatePin, PhotoPin, PinKind  # noqa: E402

__all__ = ["make_view", "tile_server"]  # fixtures used by name


def _pile(n: int, lat: float = -1.2864, lon: float = 36.8172) -> list[PhotoPin]:
    rng = np.random.default_rng(5)
    return [
        PhotoPin(f"/p/{i:03d}.jpg", lat + d[0], lon + d[1], PinKind.BEST, f"{i:03d}.jpg")
        for i, d in enumerate(rng.normal(0, 0.002, (n, 2)))
    ]


def test_pins_on_one_spot_gather_in_a_cluster_with_the_count(qtbot, make_view):
    view = make_view()
    pins = _pile(55)
    view.set_photos(pins)
    view.fit_to([(p.lat, p.lon) for p in pins], offline_zoom=8)
    qtbot.waitUntil(lambda: bool(state(qtbot, view)["clusters"]), timeout=10000)
    s = state(qtbot, view)
    assert [c["count"] for c in s["clusters"]] == [55]
    assert s["clusters"][0]["lat"] == pytest.approx(-1.2864, abs=0.05)
    text = evaluate(
        qtbot, view, "document.querySelector('.pin-cluster .cluster-count').textContent"
    )
    assert text == "55"
    # The selected photo stands alone: the cluster counts the others.
    view.set_selection([pins[7].key], fit=False)
    qtbot.waitUntil(lambda: state(qtbot, view)["clusters"][0]["count"] == 54, timeout=10000)
    view.set_selection([], fit=False)
    qtbot.waitUntil(lambda: state(qtbot, view)["clusters"][0]["count"] == 55, timeout=10000)
    # Far apart pins do not cluster.
    view.set_photos([*pins[:1], PhotoPin("/p/x.jpg", 48.85, 2.35, PinKind.EXIF, "x.jpg")])
    view.fit_to([(-1.28, 36.8), (48.85, 2.35)])
    qtbot.waitUntil(lambda: state(qtbot, view)["clusters"] == [], timeout=10000)
    assert len(state(qtbot, view)["photos"]) == 2


def test_close_in_every_pin_shows_on_its_own(qtbot, make_view):
    view = make_view()
    pins = _pile(12)
    view.set_photos(pins)
    view.evaluate(
        f"locdiff.map.setView([{pins[0].lat}, {pins[0].lon}], 17, {{animate: false}}); 1",
        lambda _: None,
    )
    qtbot.waitUntil(lambda: state(qtbot, view)["view"]["zoom"] == 17, timeout=10000)
    qtbot.waitUntil(lambda: state(qtbot, view)["clusters"] == [], timeout=10000)
    shown = "document.querySelectorAll('.leaflet-marker-pane .pin').length"
    assert evaluate(qtbot, view, shown) == 12


def test_the_density_legend_is_drawn_with_the_overlay(qtbot, make_view):
    view = make_view()
    grid = np.zeros((180, 360))
    grid[50, 200] = 500.0
    view.set_density(density_colors.density_rgba(grid))
    view.set_legend(density_colors.legend(grid))
    qtbot.waitUntil(lambda: state(qtbot, view)["legend"] is not None, timeout=10000)
    s = state(qtbot, view)
    assert s["density"] is True
    assert s["legend"]["title"] == "Probability density (log scale)"
    assert s["legend"]["ticks"] == ["peak", "peak / 10", "peak / 100", "peak / 1,000"]
    text = evaluate(qtbot, view, "document.querySelector('.density-legend').textContent")
    assert "of the probability in 100 km by 100 km" in text
    view.set_density(None)
    view.set_legend(None)
    qtbot.waitUntil(lambda: state(qtbot, view)["legend"] is None, timeout=10000)
    assert evaluate(qtbot, view, "document.querySelector('.density-legend') === null")


def test_place_names_follow_the_zoom_offline(qtbot, make_view):
    view = make_view()
    qtbot.waitUntil(lambda: state(qtbot, view)["labels"] > 5, timeout=20000)
    world = state(qtbot, view)["labelNames"]
    assert "Arezzo" not in world
    view.fit_to([(43.4633, 11.8797)], offline_zoom=11)
    qtbot.waitUntil(lambda: "Arezzo" in state(qtbot, view)["labelNames"], timeout=10000)
    labels = evaluate(qtbot, view, "document.querySelectorAll('.place-label').length")
    assert labels == state(qtbot, view)["labels"]


def test_no_place_names_over_online_tiles(qtbot, make_view, tile_server):
    view = make_view(tile_url=tile_server)
    qtbot.waitUntil(lambda: view.tiles_state() == "online", timeout=10000)
    view.fit_to([(43.4633, 11.8797)], offline_zoom=11)
    qtbot.wait(300)
    qtbot.waitUntil(lambda: state(qtbot, view)["labels"] == 0, timeout=10000)


def test_scale_bar_and_rivers_by_zoom(qtbot, make_view):
    view = make_view()
    s = state(qtbot, view)
    assert s["scaleBar"] is True and s["rivers"] > 1000
    assert s["view"]["zoom"] < 3 and s["riversShown"] is False
    view.fit_to([(30.0, 31.2)], offline_zoom=5)  # the Nile
    qtbot.waitUntil(lambda: state(qtbot, view)["riversShown"], timeout=10000)
    scale = evaluate(qtbot, view, "document.querySelector('.leaflet-control-scale').textContent")
    assert "km" in scale and "mi" in scale


def test_samples_are_visible_over_the_density(qtbot, make_view):
    view = make_view()
    lat = 90.0 - (np.arange(180) + 0.5)
    lon = -180.0 + (np.arange(360) + 0.5)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    grid = np.exp(-((la + 20.0) ** 2 + (lo + 120.0) ** 2) / (2 * 6.0**2))  # the Pacific
    view.set_density(density_colors.density_rgba(grid))
    view.set_density_opacity(1.0)
    cand = [CandidatePin(-20.0, -120.0, 0.9, "")]
    view.set_candidates(cand, [(-20.0, -105.0)])  # on the density, clear of the candidate
    xy = evaluate(qtbot, view, "locdiff.containerPoint(-20, -105)")
    qtbot.waitUntil(lambda: _near(_pixel(view.grab().toImage(), xy), (255, 255, 255), 40),
                    timeout=10000)  # fmt: skip
    view.set_samples_visible(False)
    qtbot.waitUntil(
        lambda: not _near(_pixel(view.grab().toImage(), xy), (255, 255, 255), 40), timeout=10000
    )


def test_a_density_across_the_antimeridian_is_not_cut(qtbot, make_view):
    view = make_view()
    lat = 90.0 - (np.arange(180) + 0.5)
    lon = -180.0 + (np.arange(360) + 0.5)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    far = np.minimum(np.abs(lo - 179.5), 360 - np.abs(lo - 179.5))  # degrees from 179.5 E
    grid = np.exp(-((la - 0.0) ** 2 + far**2) / (2 * 4.0**2))
    view.set_density(density_colors.density_rgba(grid))
    view.set_density_opacity(1.0)
    view.evaluate("locdiff.map.setView([0, 180], 4, {animate: false}); 1", lambda _: None)
    qtbot.waitUntil(lambda: state(qtbot, view)["view"]["zoom"] == 4, timeout=10000)
    qtbot.wait(300)
    east = evaluate(qtbot, view, "locdiff.containerPoint(0, 178)")
    west = evaluate(qtbot, view, "locdiff.containerPoint(0, 182)")  # the next copy: -178
    image = view.grab().toImage()
    east_px, west_px = _pixel(image, east), _pixel(image, west)
    assert _near(east_px, west_px, 25)  # the same density on both sides of the line
    assert not _near(west_px, (185, 211, 228), 25)  # not the bare sea
