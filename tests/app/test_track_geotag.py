"""Geotagging by time in the window (offscreen): a GPX and camera photos dropped together, the
track drawn with its toggle, proposed pins that follow the clock offset as it is typed, the
offset from a photo put where it was taken, accept, write with altitude, undo byte for byte."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from app_helpers import drop, map_state
from timed_photos import along, bumps, camera_photo, photo_with, straight_track, write_gpx

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from PySide6.QtCore import Qt  # noqa: E402

from app.model.photo import PhotoPrediction, PhotoState  # noqa: E402
from app.model.pins import PinKind  # noqa: E402
from locdiff_core.earth import great_circle_distance_km  # noqa: E402
from locdiff_core.photo import write_gps  # noqa: E402
from locdiff_core.photo.gps import read_gps  # noqa: E402

ROME = ZoneInfo("Europe/Rome")
START, END = (43.4674483, 11.8851267), (43.7695604, 11.2558136)  # Arezzo to Florence
T0 = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC).timestamp()
FAST_S = 90  # the camera's clock is this far ahead


@pytest.fixture
def trip(tmp_path):
    """An hour's drive (a fix every 10 s) and a camera 90 s fast on Rome's time: three photos
    on the drive, one taken after it, one without a time."""
    track = straight_track(START, END, T0, 3600.0)
    gpx = write_gpx(tmp_path / "drive.gpx", track)
    folder = tmp_path / "photos"
    folder.mkdir()
    utc = T0 + np.array([605.0, 1803.0, 3007.0, 9000.0])
    for i, t in enumerate(utc):
        local = dt.datetime.fromtimestamp(t + FAST_S, ROME).replace(tzinfo=None)
        camera_photo(folder / f"cam{i}.jpg", local)
    photo_with(folder / "no_time.jpg")
    lat, lon = along(START, END, T0, 3600.0, utc[:3])
    truth = {f"cam{i}.jpg": (lat[i], lon[i]) for i in range(3)}
    return gpx, folder, truth


def by_name(window):
    return {p.name: p for p in window.session.photos}


def wait_geotagged(qtbot, window):
    qtbot.waitUntil(lambda: bool(window.geotag.tracks) and window.loading_done(), timeout=30_000)


def metres(a, b) -> float:
    return 1000.0 * great_circle_distance_km(a[0], a[1], b[0], b[1])


def test_drop_a_track_with_photos_then_offset_accept_write_undo(qtbot, make_window, trip):
    gpx, folder, truth = trip
    window = make_window()
    assert drop(window, [gpx, folder])
    wait_geotagged(qtbot, window)
    assert window.tracks_panel.isVisible()
    assert window.tracks_panel.tracks.count() == 1
    row = window.tracks_panel.tracks.item(0).text()
    assert row == "Arezzo to Florence: 2024-06-01 10:00 to 11:00 UTC, 361 fixes"
    photos = by_name(window)
    assert {n for n, p in photos.items() if p.state is PhotoState.PROPOSED} == set(truth)
    assert "Europe/Rome" in window.tracks_panel.zone.itemText(0)  # guessed from the track
    for name, place in truth.items():  # 90 s off at about 17 m/s: 1.5 km from the truth
        assert metres(photos[name].proposed.point, place) > 1000
    assert "outside every track's time" in photos["cam3.jpg"].status_text()
    assert "no capture time" in photos["no_time.jpg"].status_text()

    window.tracks_panel.offset.setText("-00:01:30")  # typed: the pins follow
    wait_geotagged(qtbot, window)
    photos = by_name(window)
    for name, place in truth.items():
        assert metres(photos[name].proposed.point, place) < 1.0
        assert photos[name].status_text().startswith("from track · Arezzo to Florence, ")
    qtbot.waitUntil(lambda: window.views.idle, timeout=10_000)
    state = map_state(qtbot, window)
    assert [(t["label"].split(":")[0], t["visible"], t["points"]) for t in state["tracks"]] == [
        ("Arezzo to Florence", True, 361)
    ]
    pins = {p["key"]: p for p in state["photos"]}
    for name, place in truth.items():
        pin = pins[photos[name].key]
        assert pin["kind"] == PinKind.PROPOSED.value
        assert metres((pin["lat"], pin["lon"]), place) < 1.0

    window.accept_all_proposed()
    assert window.edits.undo_text() == "Accept 3 from tracks"  # one command, undoable
    window.edits.stack.undo()
    assert not any(p.confirmed for p in window.session.photos)
    window.edits.stack.redo()
    photos = by_name(window)
    assert {n for n, p in photos.items() if p.state is PhotoState.CONFIRMED} == set(truth)
    paths = [photos[n].path for n in sorted(truth)]
    before = {p: p.read_bytes() for p in paths}
    window.write_all()
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=20_000)
    assert window.notices[-1] == "Wrote 3 photos"
    for path in paths:
        fix = read_gps(path)
        assert metres((fix.lat, fix.lon), truth[path.name]) < 1.0
        assert 250.0 < fix.alt < 290.0  # the track's elevation, climbing 1 cm a second
    window.undo_write()
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=20_000)
    assert {p: p.read_bytes() for p in paths} == before


def test_the_toggle_hides_a_track_and_its_proposals(qtbot, make_window, trip):
    gpx, folder, _truth = trip
    window = make_window()
    window.add_paths([gpx, folder])
    wait_geotagged(qtbot, window)
    window.tracks_panel.tracks.item(0).setCheckState(Qt.CheckState.Unchecked)
    wait_geotagged(qtbot, window)
    assert not any(p.proposed for p in window.session.photos)
    assert "no track to match" in by_name(window)["cam0.jpg"].status_text()
    qtbot.waitUntil(lambda: window.views.idle, timeout=10_000)
    assert [t["visible"] for t in map_state(qtbot, window)["tracks"]] == [False]


def test_the_clock_from_a_photo_put_where_it_was_taken(qtbot, make_window, trip):
    gpx, folder, truth = trip
    window = make_window()
    window.add_paths([gpx, folder])
    wait_geotagged(qtbot, window)
    key = by_name(window)["cam1.jpg"].key
    window.photo_list.select_keys([key])
    qtbot.waitUntil(lambda: window._current == key, timeout=5_000)
    window.geotag.offset_from_selected()  # not placed yet: says how
    assert "Drag cam1.jpg's pin to where it was taken" in window.notices[-1]
    window.map.offsetRequested.emit(*truth["cam1.jpg"])  # right-click on the track there
    assert window.tracks_panel.offset.text() == "-00:01:30"
    assert window.notices[-1].startswith("Clock offset -00:01:30 from cam1.jpg")
    wait_geotagged(qtbot, window)
    for name, place in truth.items():
        assert metres(by_name(window)[name].proposed.point, place) < 1.0
    window.map.offsetRequested.emit(0.0, 0.0)  # nowhere near the track
    assert window.prompts.errors[-1][0] == "Clock from a photo"
    assert "no track passes near there" in window.prompts.errors[-1][1]


def test_a_bad_track_file_is_named_with_its_problem(qtbot, make_window, tmp_path):
    bad = tmp_path / "broken.gpx"
    bad.write_text("<gpx><trk><trkseg><trkpt lat='1' lon='2'>", encoding="utf-8")
    window = make_window()
    window.add_paths([bad])
    qtbot.waitUntil(lambda: bool(window.prompts.errors), timeout=20_000)
    title, message = window.prompts.errors[-1]
    assert title == "Open track" and message.startswith(str(bad))
    assert "Traceback" not in message and not window.geotag.tracks


def test_a_phone_photo_two_hours_before_picks_the_models_right_mode(qtbot, make_window, tmp_path):
    """No track: a phone's photo (EXIF GPS, in Florence) two hours before a camera's photo whose
    prediction prefers Chile over Italy; the time-aware guess is in Italy, the panel says why,
    and accepting takes it."""
    arezzo, santiago, florence = (43.4674, 11.8851), (-33.45, -70.67), (43.7696, 11.2558)
    taken = dt.datetime(2024, 6, 1, 12, 0)
    phone = camera_photo(tmp_path / "phone.jpg", taken, offset="+02:00")
    assert write_gps([phone], *florence)[0].ok
    camera = camera_photo(tmp_path / "camera.jpg", taken + dt.timedelta(hours=2))
    window = make_window()
    window.add_paths([phone, camera])
    qtbot.waitUntil(window.loading_done, timeout=20_000)
    key = by_name(window)["camera.jpg"].key
    window.session.set_prediction(
        key,
        PhotoPrediction(
            best=santiago,
            centre=santiago,
            candidates=((*santiago, 0.6), (*arezzo, 0.4)),
            radius50_km=300.0,
            radius90_km=9000.0,
            samples=np.zeros((0, 2)),
            density=bumps((arezzo, 0.4), (santiago, 0.6)),
        ),
    )
    qtbot.waitUntil(lambda: by_name(window)["camera.jpg"].time_guess is not None, timeout=20_000)
    guess = by_name(window)["camera.jpg"].time_guess
    assert metres(guess.best, arezzo) < 250_000 and metres(guess.best, florence) <= 241_000
    assert guess.neighbours == 1 and guess.radius90_km <= 241
    window.photo_list.select_keys([key])
    qtbot.waitUntil(lambda: window._current == key, timeout=5_000)
    assert "from the model's best guess" in window.details.time_guess.text()
    why = window.details.time_why.text()
    assert why.startswith("Bounded by phone.jpg (2.0 h before, within 241 km) at up to 120 km/h")
    window.accept_best()
    assert by_name(window)["camera.jpg"].confirmed == guess.best
