"""The map page, driven as the main window drives it, with no network (tiles point at a closed
port on 127.0.0.1). Needs QtWebEngine; skipped cleanly where it cannot start."""

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWebEngineWidgets", reason="QtWebEngine cannot load here")

from PIL import Image
from PySide6.QtCore import QObject, QPoint, Qt, QUrl
from PySide6.QtTest import QTest

from app.map import density_colors
from app.map.map_page import WEB_DIR, RequestFilter, leaflet_dir
from app.map.map_view import MapView, check_tile_url
from app.model.pins import CandidatePin, PhotoPin, PinKind

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.display
READY_TIMEOUT_MS = 30000
LAND = (0xF2, 0xEE, 0xE3)  # map.js BASEMAP_STYLE.land
SEA = (0xB9, 0xD3, 0xE4)  # map.css #map background


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png"  # nothing listens there now


def wait_ready(qtbot, view: MapView) -> None:
    loaded = []
    view.view.loadFinished.connect(loaded.append)
    try:
        qtbot.waitUntil(view.is_ready, timeout=READY_TIMEOUT_MS)
    except AssertionError:
        if not loaded:
            pytest.skip("QtWebEngine did not start a page on this machine")
        raise


@pytest.fixture
def make_view(qtbot):
    def make(ready: bool = True, **kwargs) -> MapView:
        kwargs.setdefault("tile_url", closed_port_url())
        view = MapView(**kwargs)
        qtbot.addWidget(view)
        view.resize(800, 500)
        view.show()
        if ready:
            wait_ready(qtbot, view)
        return view

    return make


def evaluate(qtbot, view: MapView, js: str):
    box = []
    view.evaluate(js, box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=10000)
    return box[0]


def _ignore(result) -> None:
    pass


def state(qtbot, view: MapView) -> dict:
    return evaluate(qtbot, view, "locdiffState()")


PINS = [
    PhotoPin("/photos/arezzo.jpg", 43.4633, 11.8797, PinKind.EXIF, "arezzo.jpg"),
    PhotoPin("/photos/sydney.jpg", -33.8568, 151.2153, PinKind.BEST, "sydney.jpg"),
    PhotoPin("/photos/nairobi.jpg", -1.2864, 36.8172, PinKind.CONFIRMED, "nairobi.jpg"),
]


def test_page_loads_offline_with_the_basemap_and_local_leaflet(qtbot, make_view):
    view = make_view()
    told = []
    view.tilesChanged.connect(told.append)
    qtbot.waitUntil(lambda: state(qtbot, view)["tiles"] == "unreachable", timeout=10000)
    s = state(qtbot, view)
    assert view.tiles_state() == "unreachable" and told == ["unreachable"]
    port = view._tile_url.split(":")[2].split("/")[0]
    assert s["notice"] == (
        f"The map tile server 127.0.0.1:{port} cannot be reached: showing the offline map."
    )
    assert s["basemapFeatures"] > 100
    assert evaluate(qtbot, view, "L.version") == "1.9.3"  # from XStatic-Leaflet, not a CDN
    attribution = "document.querySelector('.leaflet-control-attribution').textContent"
    assert "GSHHG" in evaluate(qtbot, view, attribution)


def test_the_page_may_fetch_only_its_files_and_the_tile_host(qtbot, make_view):
    view = make_view()
    view.evaluate("new Image().src = 'http://127.0.0.2:9/elsewhere.png'; 1", _ignore)
    qtbot.waitUntil(lambda: any("127.0.0.2" in u for u in view._filter.blocked), timeout=10000)
    assert not any("leaflet" in u or "map." in u for u in view._filter.blocked)
    view.set_tile_url("")  # offline basemap only
    assert state(qtbot, view)["tiles"] == "offline"
    with pytest.raises(ValueError, match=r"\{z\}"):
        view.set_tile_url("https://tiles.example.org/map.png")


def test_request_filter_rules(qtbot):
    parent = QObject()
    rules = RequestFilter(parent)
    local = QUrl.fromLocalFile
    assert rules.allows(local(str(WEB_DIR / "map.js")))
    assert rules.allows(local(str(leaflet_dir() / "leaflet.js")))
    assert not rules.allows(local(str(WEB_DIR.parent / "map_view.py")))
    assert not rules.allows(local("/etc/passwd"))
    assert rules.allows(QUrl("qrc:///qtwebchannel/qwebchannel.js"))
    assert rules.allows(QUrl("data:image/png;base64,AAAA"))
    tile = QUrl("https://b.tile.openstreetmap.org/3/4/2.png")
    assert not rules.allows(tile)  # no tile URL: nothing remote
    rules.set_tile_url("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png")
    assert rules.allows(tile)
    assert not rules.allows(QUrl("https://b.tile.openstreetmap.org.evil.example/3/4/2.png"))
    assert not rules.allows(QUrl("http://b.tile.openstreetmap.org/3/4/2.png"))
    assert not rules.allows(QUrl("https://b.tile.openstreetmap.org:8443/3/4/2.png"))
    assert not rules.allows(QUrl("https://unpkg.com/leaflet/dist/leaflet.js"))


class _TileHandler(BaseHTTPRequestHandler):
    png = b""
    requests: list[str]  # every path asked for, in order (a list per server)

    def do_GET(self):
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.png)))
        self.send_header("Cache-Control", "public, max-age=86400")  # as OSM's servers do
        self.end_headers()
        self.wfile.write(self.png)

    def log_message(self, *args):
        pass


class TileServer(str):
    """The tile URL template, with ``requests``: the paths the server was asked for."""

    def __new__(cls, url: str, requests: list[str]):
        self = super().__new__(cls, url)
        self.requests = requests
        return self


@pytest.fixture
def tile_server():
    """A tile server on the loopback address that answers every tile with solid magenta."""
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (255, 0, 255)).save(buffer, format="PNG")
    handler = type("Handler", (_TileHandler,), {"png": buffer.getvalue(), "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    yield TileServer(url, handler.requests)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_online_tiles_cover_the_basemap_when_reachable(qtbot, make_view, tile_server):
    view = make_view(tile_url=tile_server)
    qtbot.waitUntil(lambda: view.tiles_state() == "online", timeout=10000)
    assert state(qtbot, view)["tiles"] == "online"
    pacific = evaluate(qtbot, view, "locdiff.containerPoint(-15, -130)")
    qtbot.waitUntil(
        lambda: _near(_patch_median(view.grab().toImage(), pacific), (255, 0, 255)), timeout=10000
    )


def test_online_a_single_photo_is_fitted_at_town_scale(qtbot, make_view, tile_server):
    view = make_view(tile_url=tile_server)
    qtbot.waitUntil(lambda: view.tiles_state() == "online", timeout=10000)
    view.set_photos(PINS)
    view.set_selection([PINS[1].key], fit=True)  # one photo: zoom 10, not the offline 5
    qtbot.waitUntil(lambda: state(qtbot, view)["view"]["zoom"] == 10, timeout=10000)
    s = state(qtbot, view)
    assert (s["view"]["lat"], s["view"]["lon"]) == pytest.approx(
        (PINS[1].lat, PINS[1].lon), abs=0.01
    )
    view.set_selection([PINS[0].key, PINS[2].key], fit=True)  # two far apart: both in view
    qtbot.waitUntil(lambda: state(qtbot, view)["view"]["zoom"] < 10, timeout=10000)


_SHOW_TILES = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app.map.map_view import MapView

app = QApplication(sys.argv[:1])
view = MapView(tile_url=sys.argv[1])
view.resize(800, 500)
view.show()
states = []
view.tilesChanged.connect(states.append)

def done():
    view.close()
    view.deleteLater()
    QTimer.singleShot(500, app.quit)  # the page and its cache writes end before the profile

view.tilesChanged.connect(lambda state: QTimer.singleShot(2000, done))
QTimer.singleShot(60_000, app.quit)
app.exec()
print("states", states)
"""


def test_tiles_shown_once_come_from_the_disk_cache_in_the_next_session(tile_server, tmp_path):
    env = {**os.environ, "LOCDIFF_CACHE_DIR": str(tmp_path / "cache")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])

    def session() -> list[str]:
        before = len(tile_server.requests)
        done = subprocess.run(
            [sys.executable, "-c", _SHOW_TILES, tile_server],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "online" in done.stdout, done.stdout + done.stderr[-2000:]
        return tile_server.requests[before:]

    first = session()
    assert len(first) >= 4  # the world at the start zoom takes several tiles
    assert any((tmp_path / "cache" / "map" / "cache").rglob("*"))
    second = session()
    assert second == []  # every tile from the disk: the server is not asked again
    from PySide6.QtCore import QLockFile

    other = QLockFile(str(tmp_path / "cache" / "map" / "in-use.lock"))  # another app instance
    assert other.tryLock(0)
    try:
        third = session()  # still works, caching in memory only
    finally:
        other.unlock()
    assert len(third) >= 4


def test_evaluate_returns_plain_data_or_none(qtbot, make_view):
    view = make_view()
    assert evaluate(qtbot, view, "({a: [1, 2.5, 'x'], b: {c: true}})") == {
        "a": [1, 2.5, "x"],
        "b": {"c": True},
    }
    assert evaluate(qtbot, view, "const q = 3; q * 2") == 6
    assert evaluate(qtbot, view, "undefined") is None
    assert evaluate(qtbot, view, "locdiff.map") is None  # a cyclic object: logged, not returned
    assert evaluate(qtbot, view, "throw new Error('boom')") is None


def test_state_reflects_what_was_pushed(qtbot, make_view):
    view = make_view()
    view.set_photos(PINS)
    view.set_selection([PINS[1].key], fit=False)
    cands = [CandidatePin(-33.9, 151.2, 0.7, "Sydney"), CandidatePin(-37.8, 145.0, 0.3, "Melb")]
    view.set_candidates(cands, [(-33.0, 151.0), (-34.0, 150.5), (-37.0, 145.2)])
    view.set_samples_visible(False)
    grid = np.ones((18, 36))
    view.set_density(density_colors.density_rgba(grid))
    view.set_density_opacity(0.35)
    s = state(qtbot, view)
    assert [(p["key"], p["kind"]) for p in s["photos"]] == [(p.key, p.kind.value) for p in PINS]
    assert s["photos"][0]["lat"] == pytest.approx(43.4633)
    assert s["selection"] == [PINS[1].key]
    assert [c["probability"] for c in s["candidates"]] == [0.7, 0.3]
    assert s["candidates"][0]["label"] == "Sydney"
    assert s["samples"] == 3 and s["samplesVisible"] is False
    assert s["density"] is True and s["densityOpacity"] == pytest.approx(0.35)
    assert evaluate(qtbot, view, "document.querySelectorAll('.pin-selected').length") == 1

    view.set_photos(PINS[:1])  # replaces all pins
    view.set_candidates([], [])
    view.set_density(None)
    s = state(qtbot, view)
    assert [p["key"] for p in s["photos"]] == [PINS[0].key]
    assert s["candidates"] == [] and s["samples"] == 0 and s["density"] is False


def test_calls_before_the_page_is_ready_are_replayed(qtbot, make_view):
    view = make_view(ready=False)
    assert not view.is_ready()
    view.set_photos(PINS)
    view.set_photos(PINS[:2])  # the latest call of a kind wins
    view.set_selection([PINS[0].key], fit=True)
    view.set_density_opacity(0.9)
    results = []
    view.evaluate("locdiffState().photos.length", results.append)
    with qtbot.waitSignal(view.ready, timeout=READY_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: bool(results), timeout=10000)
    assert results == [2]
    s = state(qtbot, view)
    assert s["selection"] == [PINS[0].key] and s["densityOpacity"] == pytest.approx(0.9)
    assert (s["view"]["lat"], s["view"]["lon"]) == pytest.approx((43.4633, 11.8797), abs=0.01)
    # One point, offline: as close as the basemap is useful (online: a town-sized view, zoom 10).
    assert s["tiles"] != "online" and s["view"]["zoom"] == 5


def test_a_reloaded_page_gets_the_state_back(qtbot, make_view):
    view = make_view()
    view.set_photos(PINS)
    view.set_samples_visible(False)
    with qtbot.waitSignal(view.ready, timeout=READY_TIMEOUT_MS):
        view.reload()
    s = state(qtbot, view)
    assert len(s["photos"]) == 3 and s["samplesVisible"] is False


def test_selection_fits_the_map_to_the_photos(qtbot, make_view):
    view = make_view()
    view.set_photos(PINS)
    view.set_selection([PINS[0].key, PINS[2].key])  # Arezzo and Nairobi
    s = state(qtbot, view)
    bounds = evaluate(qtbot, view, "locdiff.map.getBounds().toBBoxString()")
    west, south, east, north = map(float, bounds.split(","))
    for pin in (PINS[0], PINS[2]):
        assert south < pin.lat < north and west < pin.lon < east
    assert not south < PINS[1].lat < north  # Sydney is not what was asked for
    assert 2 <= s["view"]["zoom"] <= 6


def test_page_events_reach_the_signals(qtbot, make_view):
    view = make_view()
    view.set_photos(PINS)
    with qtbot.waitSignal(view.pinClicked, timeout=5000) as clicked:
        view.evaluate(f"locdiff.photoMarker({json.dumps(PINS[1].key)}).fire('click'); 1", _ignore)
    assert clicked.args == [PINS[1].key]

    js = (
        f"(function () {{ const m = locdiff.photoMarker({json.dumps(PINS[2].key)});"
        " m.setLatLng([-3.0667, 37.3556]); m.fire('dragend'); })()"
    )
    with qtbot.waitSignal(view.pinMoved, timeout=5000) as moved:
        view.evaluate(js, _ignore)
    assert moved.args[0] == PINS[2].key
    assert moved.args[1:] == pytest.approx([-3.0667, 37.3556])

    js = "locdiff.map.fire('contextmenu', {latlng: L.latLng(48.8584, 2.2945 + 360),"
    js += " containerPoint: L.point(100, 80)})"
    view.evaluate(js, _ignore)
    qtbot.waitUntil(lambda: view.context_menu is not None, timeout=5000)
    actions = {a.text(): a for a in view.context_menu.actions()}
    with qtbot.waitSignal(view.locationRequested, timeout=5000) as requested:
        actions["Set location here"].trigger()
    assert requested.args == pytest.approx([48.8584, 2.2945])  # longitude wrapped to +-180


def test_a_real_click_on_a_pin_selects_its_photo(qtbot, make_view):
    view = make_view()
    view.set_photos(PINS)
    x, y = evaluate(qtbot, view, f"locdiff.containerPoint({PINS[0].lat}, {PINS[0].lon})")
    target = view.view.focusProxy()
    with qtbot.waitSignal(view.pinClicked, timeout=5000) as clicked:
        QTest.mouseClick(target, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    assert clicked.args == [PINS[0].key]


def _pixel(image, xy) -> tuple:
    color = image.pixelColor(round(xy[0]), round(xy[1]))
    return color.red(), color.green(), color.blue()


def _patch_median(image, xy, half: int = 4) -> tuple:
    """The median colour around a point: thin borders and grid lines do not count."""
    pixels = [
        _pixel(image, (xy[0] + dx, xy[1] + dy))
        for dx in range(-half, half + 1)
        for dy in range(-half, half + 1)
    ]
    return tuple(int(v) for v in np.median(np.array(pixels), axis=0))


def _near(a, b, tol=12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_screenshot_shows_the_basemap_where_the_land_is(qtbot, make_view):
    view = make_view()
    land = [
        evaluate(qtbot, view, f"locdiff.containerPoint({la}, {lo})")
        for la, lo in [(10, 22), (-25, 135), (60, 100)]
    ]  # Chad, Australia, Siberia
    sea = [
        evaluate(qtbot, view, f"locdiff.containerPoint({la}, {lo})")
        for la, lo in [(-15, -130), (40, -40)]
    ]  # the Pacific, the Atlantic

    def painted():
        image = view.grab().toImage()
        return all(_near(_patch_median(image, xy), LAND) for xy in land) and all(
            _near(_patch_median(image, xy), SEA) for xy in sea
        )

    qtbot.waitUntil(painted, timeout=10000)


def test_density_overlay_peak_lands_at_its_latitude_on_screen(qtbot, make_view):
    view = make_view()
    lat = 90.0 - (np.arange(180) + 0.5)
    lon = -180.0 + (np.arange(360) + 0.5)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    grid = np.exp(-((la - 60.0) ** 2 + (lo - 90.0) ** 2) / (2 * 2.0**2))
    view.set_density(density_colors.density_rgba(grid))
    view.set_density_opacity(1.0)
    x, y_peak = evaluate(qtbot, view, "locdiff.containerPoint(60, 90)")
    top = tuple(int(c) for c in density_colors.RAMP_COLORS[-1])

    def brightest_row():
        image = view.grab().toImage()
        column = [_pixel(image, (x, y)) for y in range(image.height())]
        dist = [sum((a - b) ** 2 for a, b in zip(c, top, strict=True)) for c in column]
        return int(np.argmin(dist)), min(dist)

    qtbot.waitUntil(lambda: brightest_row()[1] < 400, timeout=10000)
    row, _ = brightest_row()
    # drawn at 60 north; a latitude-linear image would put it at 76 north, off this view
    assert abs(row - y_peak) <= 4


def test_a_thousand_pins_are_one_call(qtbot, make_view):
    view = make_view()
    rng = np.random.default_rng(0)
    kinds = list(PinKind)
    pins = [
        PhotoPin(f"/p/{i}.jpg", rng.uniform(-60, 70), rng.uniform(-180, 180), kinds[i % 3], "")
        for i in range(1000)
    ]
    calls = []
    run = view._page.runJavaScript
    view._page.runJavaScript = lambda *args: (calls.append(args[0]), run(*args))[1]
    start = time.perf_counter()
    view.set_photos(pins)
    assert evaluate(qtbot, view, "locdiffState().photos.length") == 1000
    elapsed = time.perf_counter() - start
    assert len([c for c in calls if "setPhotos" in c]) == 1
    assert elapsed < 10.0  # about 0.6 s here; generous for a loaded CI machine


def test_tile_url_validation():
    assert check_tile_url(None) == "" and check_tile_url("  ") == ""
    url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert check_tile_url(url) == url
    with pytest.raises(ValueError, match="http"):
        check_tile_url("file:///tmp/{z}/{x}/{y}.png")
    with pytest.raises(ValueError, match="lacks"):
        check_tile_url("https://tiles.example.org/{z}.png")


def test_set_density_rejects_a_grid_that_is_not_rgba(qtbot, make_view):
    view = make_view(ready=False)
    with pytest.raises(ValueError, match="density_rgba"):
        view.set_density(np.ones((18, 36)))
    with pytest.raises(ValueError, match="opacity"):
        view.set_density_opacity(float("nan"))
