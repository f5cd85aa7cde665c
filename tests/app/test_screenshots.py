"""The window in its main states, as a user sees it (offscreen): no model yet, photos predicted,
and an offline map pack as the basemap. Each test checks what the picture must show and saves
it; with ``LOCDIFF_SCREENSHOTS=docs/images`` the PNGs are the README's."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from app_helpers import add_photos, map_state, predict_and_wait, wait_loaded, wait_model
from PIL import Image, ImageDraw

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWebEngineWidgets", reason="QtWebEngine cannot load here")

from tile_pack_files import write_mbtiles  # noqa: E402

from app.map import density_colors  # noqa: E402

SIZE = (1400, 860)
SETTLE_MS = 1500  # the page's compositor draws the last frame


def _shoot(qtbot, window, name: str, tmp_path: Path) -> np.ndarray:
    """Save the window as ``name`` (in LOCDIFF_SCREENSHOTS or tmp_path); its RGB pixels."""
    qtbot.waitUntil(lambda: window.views.idle, timeout=10_000)
    qtbot.wait(SETTLE_MS)
    folder = Path(os.environ.get("LOCDIFF_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert window.grab().save(str(path))
    with Image.open(path) as image:
        assert image.size == SIZE
        return np.asarray(image.convert("RGB"))


def _map_pixels(window, pixels: np.ndarray) -> np.ndarray:
    view = window.map.view
    top_left = view.mapTo(window, view.rect().topLeft())
    x, y = top_left.x(), top_left.y()
    return pixels[y : y + view.height(), x : x + view.width()]


def _show(window) -> None:
    window.resize(*SIZE)


def test_screenshot_no_model(qtbot, make_window, gps_photos, tmp_path):
    from app.model.settings import Settings

    window = make_window(Settings(tile_url=""), pipeline_factory=None)  # GeoCLIP, no backbone
    _show(window)
    add_photos(qtbot, window, gps_photos)
    wait_loaded(qtbot, window)
    qtbot.waitUntil(lambda: window.model_state.name != "LOADING", timeout=30_000)
    window.photo_list.select_keys([window.session.photos[0].key])
    pixels = _shoot(qtbot, window, "app-no-model.png", tmp_path)
    assert "CLIP" in window.model_panel.text.text()  # says what the model needs
    assert not window.menu_actions["predict_all"].isEnabled()
    assert len(map_state(qtbot, window)["photos"]) + sum(
        c["count"] for c in map_state(qtbot, window)["clusters"]
    ) >= len(gps_photos)
    blue_pins = np.all(np.abs(_map_pixels(window, pixels) - (31, 111, 209)) < 30, axis=-1)
    assert blue_pins.sum() > 50  # the photos' own GPS: blue squares (or their cluster)


def test_screenshot_predicted(qtbot, make_window, fast_settings, gps_photos, tmp_path):
    window = make_window(fast_settings)
    _show(window)
    wait_model(qtbot, window)
    plain = []  # the samples without their EXIF: the map shows the guesses, not the truth
    for path in gps_photos[:4]:
        with Image.open(path) as image:
            image.save(tmp_path / f"plain_{path.name}", quality=90)
        plain.append(tmp_path / f"plain_{path.name}")
    add_photos(qtbot, window, plain)
    wait_loaded(qtbot, window)
    predict_and_wait(qtbot, window, window.session.keys())
    photo = window.session.photos[0]
    window.photo_list.select_keys([photo.key])
    qtbot.waitUntil(lambda: window.details.key == photo.key, timeout=5_000)
    qtbot.waitUntil(lambda: map_state(qtbot, window)["legend"] is not None, timeout=10_000)
    pixels = _shoot(qtbot, window, "app-predicted.png", tmp_path)
    state = map_state(qtbot, window)
    assert state["density"] and state["candidates"] and state["samples"] > 0
    assert state["legend"]["title"].startswith("Probability density")
    # a nearly flat density (a random model) tints the map faintly, not in one colour
    expected = (
        window.map_panel.opacity.value() / 100 * density_colors.strength(photo.prediction.density)
    )
    assert state["densityOpacity"] == pytest.approx(expected)
    top = np.array(density_colors.RAMP_COLORS[-1])  # the ramp's brightest: the peak
    assert np.any(np.all(np.abs(_map_pixels(window, pixels) - top) < 40, axis=-1))


def _tile_row(lat: float, n: int) -> int:
    lat_r = np.radians(lat)
    return int((1 - np.log(np.tan(lat_r) + 1 / np.cos(lat_r)) / np.pi) / 2 * n)


def _pack_tiles() -> dict:
    """Tiles over Tuscany at zooms 0-9: pale green land with a grid and each tile's address,
    so a picture shows at once that the basemap is the pack."""
    tiles = {}
    for z in range(10):
        n = 1 << z
        x0, x1 = int((10.5 + 180) / 360 * n), int((13.0 + 180) / 360 * n)
        for x in range(x0, x1 + 1):
            for y in range(_tile_row(44.5, n), _tile_row(42.5, n) + 1):
                image = Image.new("RGB", (256, 256), (214, 234, 200))
                draw = ImageDraw.Draw(image)
                draw.rectangle((0, 0, 255, 255), outline=(150, 180, 140))
                draw.text((8, 8), f"pack {z}/{x}/{y}", fill=(60, 90, 60))
                out = io.BytesIO()
                image.save(out, "PNG")
                tiles[(z, x, y)] = out.getvalue()
    return tiles


def test_screenshot_offline_pack(qtbot, make_window, gps_photos, tmp_path):
    pack = write_mbtiles(
        tmp_path / "tuscany.mbtiles",
        _pack_tiles(),
        {
            "name": "Tuscany (test tiles)",
            "format": "png",
            "bounds": "10.5,42.5,13,44.5",
            "minzoom": "0",
            "maxzoom": "9",
            "attribution": "Test tiles",
        },
    )
    window = make_window()
    _show(window)
    window.prompts.pack_answer = str(pack)
    window.packs.open_map_pack()
    add_photos(qtbot, window, gps_photos)
    wait_loaded(qtbot, window)
    window.photo_list.select_keys([window.session.photos[0].key])
    qtbot.waitUntil(lambda: map_state(qtbot, window)["pack"]["tiles"] > 0, timeout=15_000)
    qtbot.waitUntil(lambda: map_state(qtbot, window)["view"]["zoom"] >= 7, timeout=10_000)
    pixels = _shoot(qtbot, window, "app-offline-pack.png", tmp_path)
    assert map_state(qtbot, window)["tiles"] == "pack"
    pale_green = np.all(np.abs(_map_pixels(window, pixels) - (214, 234, 200)) < 6, axis=-1)
    assert pale_green.mean() > 0.3  # the pack's tiles fill the map
