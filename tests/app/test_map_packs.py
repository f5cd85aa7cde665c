"""Offline map packs in the window: open one as the basemap, kept for the next start, closed;
a bad file says why and changes nothing."""

import pytest

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWebEngineWidgets", reason="QtWebEngine cannot load here")

from app_helpers import map_state  # noqa: E402
from tile_pack_files import png_tile, write_mbtiles, write_pmtiles  # noqa: E402

from app.map_packs import describe, pack_spec  # noqa: E402
from app.model.settings import Settings  # noqa: E402

GREEN = (40, 200, 60)


def _alps(tmp_path):
    """A raster MBTiles of the Alps at zooms 0-6 (every tile solid green)."""
    tiles = {}
    for z in range(7):
        n = 1 << z
        # the tiles over 44..48 N, 5..12 E at this zoom
        x0, x1 = int((5 + 180) / 360 * n), int((12 + 180) / 360 * n)
        for x in range(x0, x1 + 1):
            for y in range(n):
                tiles[(z, x, y)] = png_tile(GREEN, size=64)
    meta = {"name": "Alps", "format": "png", "bounds": "5,44,12,48", "minzoom": "0",
            "maxzoom": "6", "attribution": "Alps test tiles"}  # fmt: skip
    return write_mbtiles(tmp_path / "alps.mbtiles", tiles, meta)


def test_a_pack_becomes_the_basemap_and_is_kept_for_the_next_start(qtbot, make_window, tmp_path):
    path = _alps(tmp_path)
    window = make_window()
    window.prompts.pack_answer = str(path)
    assert not window.menu_actions["close_map_pack"].isEnabled()
    window.packs.open_map_pack()
    assert window.prompts.errors == []
    assert window.settings.map_pack == str(path)
    qtbot.waitUntil(lambda: (map_state(qtbot, window)["pack"] or {}).get("tiles", 0) > 0,
                    timeout=15000)  # fmt: skip
    s = map_state(qtbot, window)
    assert s["tiles"] == "pack" and s["pack"]["kind"] == "raster" and s["pack"]["name"] == "Alps"
    assert window.notices[-1] == "Basemap: alps.mbtiles: raster map, zoom 0-6"
    qtbot.waitUntil(window.menu_actions["close_map_pack"].isEnabled, timeout=5000)
    attribution = "document.querySelector('.leaflet-control-attribution').textContent"
    got = []
    window.map.evaluate(attribution, got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert "Alps test tiles" in got[0]

    again = make_window(window.settings)  # the next start
    qtbot.waitUntil(lambda: (map_state(qtbot, again)["pack"] or {}).get("name") == "Alps",
                    timeout=15000)  # fmt: skip

    window.packs.close_map_pack()
    assert window.settings.map_pack == "" and window.packs.pack is None
    qtbot.waitUntil(lambda: map_state(qtbot, window)["pack"] is None, timeout=5000)
    assert map_state(qtbot, window)["tiles"] != "pack"


def test_a_file_that_is_no_pack_says_why_and_changes_nothing(qtbot, make_window, tmp_path):
    bad = tmp_path / "notes.mbtiles"
    bad.write_text("not a database\n")
    window = make_window()
    window.prompts.pack_answer = str(bad)
    window.packs.open_map_pack()
    [(title, text)] = window.prompts.errors
    assert title == "Open map pack" and "notes.mbtiles" in text
    assert window.settings.map_pack == "" and window.packs.pack is None
    assert map_state(qtbot, window)["pack"] is None


def test_a_pack_gone_since_the_last_start_is_said_once_and_forgotten(qtbot, make_window, tmp_path):
    window = make_window(Settings(tile_url="", map_pack=str(tmp_path / "gone.pmtiles")))
    assert window.packs.pack is None and window.settings.map_pack == ""
    assert any("gone.pmtiles" in n and "not used" in n for n in window.notices)


def test_the_page_gets_the_pack_as_it_is(tmp_path):
    from app.map.tile_packs import open_pack

    path = write_pmtiles(
        tmp_path / "lake.pmtiles", {(0, 0, 0): png_tile(GREEN)}, bounds=(45.0, 5.0, 48.0, 11.0)
    )
    with open_pack(path) as pack:
        spec = pack_spec(pack, "http://127.0.0.1:1/packs/x/{z}/{x}/{y}.png")
        assert spec["kind"] == "raster" and spec["minZoom"] == 0 and spec["maxZoom"] == 0
        assert spec["bounds"] == [[45.0, 5.0], [48.0, 11.0]]
        assert spec["attribution"] == "Map pack: lake.pmtiles"
        assert describe(pack) == "lake.pmtiles: raster map, zoom 0-0"
