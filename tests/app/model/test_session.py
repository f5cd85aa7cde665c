"""The Qt-free session: adding photos, states, pins, corrections, places, exports."""

import csv
import json
import os

import numpy as np
import pytest

from app.model.pins import PinKind
from app.model.session import (
    PhotoPrediction,
    PhotoState,
    Session,
    distance_km,
    export_plan,
    identify,
    place_key,
)
from locdiff_core.engines import Engine
from locdiff_core.photo.reading import iter_photos


def prediction(best=(43.47, 11.88), centre=(43.0, 11.0), **engine) -> PhotoPrediction:
    return PhotoPrediction(
        **engine,
        best=best,
        centre=centre,
        candidates=((best[0], best[1], 0.75), (-33.45, -70.67, 0.25)),
        radius50_km=12.5,
        radius90_km=8000.0,
        samples=np.array([best, best, best, (-33.45, -70.67)], dtype=np.float64),
        density=np.ones((9, 18), dtype=np.float32),
    )


def add(session: Session, paths) -> list:
    """Add photos as the window does: :class:`app.workers.loaders.PhotoFinder`'s walk
    (``iter_photos``, each path identified) handed to ``Session.add_found``."""
    return session.add_found(identify(path) for path in iter_photos(paths))


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


@pytest.fixture
def photos(tmp_path):
    for name in ("a.jpg", "b.JPG", "c.png"):
        (tmp_path / name).write_bytes(b"not read here")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.jpeg").write_bytes(b"x")
    (tmp_path / "sub" / "notes.txt").write_text("not a photo")
    (tmp_path / "sub" / ".hidden.jpg").write_bytes(b"x")
    return tmp_path


def test_add_searches_folders_and_ignores_duplicates(photos, monkeypatch):
    session = Session()
    listener = Recorder()
    session.listeners.append(listener)
    added = add(session, [photos / "a.jpg", photos / "sub"])
    assert [p.name for p in added] == ["a.jpg", "d.jpeg"]
    assert listener.calls == [("photos_about_to_be_added", 0, 1), ("photos_added",)]
    os.symlink(photos / "a.jpg", photos / "link.jpg")
    monkeypatch.chdir(photos)
    again = add(session, ["a.jpg", photos / "link.jpg", photos, photos / "sub" / "d.jpeg"])
    assert sorted(p.name for p in again) == ["b.JPG", "c.png"]  # a.jpg thrice, d.jpeg twice
    assert len(session) == 4 and session.row_of(str((photos / "c.png").resolve())) is not None


def test_states_follow_what_is_known(photos):
    session = Session()
    (photo,) = add(session, [photos / "a.jpg"])
    key = photo.key
    assert photo.state is PhotoState.READING
    session.set_exif(key, None)
    assert photo.state is PhotoState.NO_LOCATION and photo.status_text() == "no location"
    session.set_exif(key, (43.5, 11.9))
    assert photo.state is PhotoState.EXIF and photo.location() == ((43.5, 11.9), PinKind.EXIF)
    session.set_queued([key], True)
    assert photo.status_text() == "EXIF GPS · queued"
    session.set_prediction(key, prediction())
    assert not photo.queued and photo.state is PhotoState.PREDICTED
    assert photo.status_text() == "predicted · has EXIF GPS"
    assert photo.location() == ((43.47, 11.88), PinKind.BEST)
    session.accept_best([key])
    assert photo.state is PhotoState.CONFIRMED and photo.confirmed == (43.47, 11.88)
    session.set_predict_error(key, "the image data is damaged")
    assert photo.state is PhotoState.ERROR
    assert photo.status_text() == "error: the image data is damaged"


def test_unusable_file_and_gps_note(photos):
    session = Session()
    a, b = add(session, [photos / "a.jpg", photos / "b.JPG"])
    session.set_exif(a.key, None, error="not an image", unusable=True)
    session.set_exif(b.key, None, error="the EXIF GPS position is invalid", unusable=False)
    assert a.state is PhotoState.ERROR and a.status_text() == "error: not an image"
    assert b.state is PhotoState.NO_LOCATION and b.gps_note.startswith("the EXIF")
    assert session.write_plan([a.key]) == []  # an unusable file is never written


def test_a_damaged_image_stays_an_error_whichever_reader_finishes_first(photos):
    """A JPEG cut short has a readable EXIF header but no image: the thumbnail finds that, and
    its EXIF may arrive before or after."""
    session = Session()
    first, last = add(session, [photos / "a.jpg", photos / "b.JPG"])
    session.set_exif(first.key, None)
    session.set_load_error(first.key, "the image data is truncated")
    session.set_load_error(last.key, "the image data is truncated")
    session.set_exif(last.key, None)  # an EXIF read that found no GPS does not clear it
    for photo in (first, last):
        assert photo.state is PhotoState.ERROR and photo.exif_read
        assert photo.status_text() == "error: the image data is truncated"


def test_pins_one_per_located_photo_with_its_kind(photos):
    session = Session()
    a, b, c, _ = add(session, [photos])
    session.set_exif(a.key, (1.0, 2.0))
    session.set_prediction(b.key, prediction())
    session.set_prediction(c.key, prediction())
    session.confirm(c.key, 10.0, 20.0)
    session.set_places([(10.0, 20.0, "Somewhere")])
    pins = {p.key: p for p in session.pins()}
    assert set(pins) == {a.key, b.key, c.key}  # the fourth has no location
    assert pins[a.key].kind is PinKind.EXIF and pins[b.key].kind is PinKind.BEST
    assert (pins[c.key].lat, pins[c.key].lon, pins[c.key].kind) == (10.0, 20.0, PinKind.CONFIRMED)
    assert pins[c.key].label == f"{c.name} — Somewhere"
    cands = session.candidate_pins(b.key)
    assert [c.probability for c in cands] == [0.75, 0.25] and cands[0].label.startswith("#1: 75%")
    assert len(session.samples_of(b.key)) == 4 and session.candidate_pins(a.key) == []


def test_confirm_validates_and_clear_forgets(photos):
    session = Session()
    (photo,) = add(session, [photos / "a.jpg"])
    with pytest.raises(ValueError, match="not a location"):
        session.confirm(photo.key, 91.0, 0.0)
    session.confirm(photo.key, -33.9, 151.2)
    session.clear_confirmation([photo.key])
    assert photo.confirmed is None
    assert session.accept_best([photo.key]) == []  # nothing predicted to accept


def test_places_are_asked_once_per_point(photos):
    session = Session()
    a, b = add(session, [photos / "a.jpg", photos / "b.JPG"])
    session.set_exif(a.key, (43.46744, 11.88512))
    session.set_prediction(b.key, prediction())
    todo = session.unnamed_points([a, b])
    # EXIF of a; best, centre and the second candidate of b (the first candidate is the best)
    assert len(todo) == 4
    session.set_places([(lat, lon, f"place {i}") for i, (lat, lon) in enumerate(todo)])
    assert session.unnamed_points([a, b]) == []
    assert session.place_of(a) == "place 0"
    assert place_key(43.467441, 11.885121) == place_key(43.46744, 11.88512)


def test_remove_resets_rows(photos):
    session = Session()
    a, b, c, d = add(session, [photos])
    listener = Recorder()
    session.listeners.append(listener)
    session.remove([b.key, "not open"])
    assert session.keys() == [a.key, c.key, d.key] and session.row_of(c.key) == 1
    assert listener.calls == [("photos_about_to_be_reset",), ("photos_reset",)]


def test_export_csv_geojson_gpx(photos, tmp_path):
    session = Session()
    a, b, c, d = add(session, [photos])
    session.set_exif(a.key, (43.46744, 11.88512))
    session.set_prediction(a.key, prediction())
    session.set_prediction(b.key, prediction(best=(-33.8568, 151.2153), engine=Engine.GEOCLIP))
    session.confirm(d.key, 48.8584, 2.2945)  # never predicted: the user typed it
    session.set_places([(43.46744, 11.88512, "Arezzo, Tuscany, Italy")])
    out = tmp_path / "out.csv"
    summary = export_plan(session, [a.key, b.key, c.key, d.key], "csv").write(out)
    assert summary.written == 3 and summary.skipped == ("c.png",)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["file"] for r in rows] == [str(a.path), str(b.path), str(d.path)]
    sources = [(r["location_source"], float(r["lat"]), float(r["lon"])) for r in rows]
    assert sources == [
        ("exif", 43.46744, 11.88512),  # the file's own position outranks the guess
        ("predicted", -33.8568, 151.2153),
        ("confirmed", 48.8584, 2.2945),
    ]
    assert float(rows[0]["best_lat"]) == 43.47 and float(rows[1]["best_lon"]) == 151.2153
    assert float(rows[0]["radius_50pct_km"]) == 12.5 and float(rows[0]["radius_90pct_km"]) == 8000
    assert float(rows[0]["candidate2_lat"]) == -33.45 and float(rows[0]["candidate1_score"]) == 0.75
    assert float(rows[0]["exif_lat"]) == 43.46744 and rows[1]["exif_lat"] == ""
    assert float(rows[2]["confirmed_lon"]) == 2.2945 and rows[2]["best_lat"] == ""
    expected_km = distance_km((43.47, 11.88), (43.46744, 11.88512))
    assert float(rows[0]["error_km"]) == pytest.approx(expected_km)
    assert rows[0]["place"] == "Arezzo, Tuscany, Italy"  # the name of the exported location
    assert [r["engine"] for r in rows] == ["locdiff", "geoclip", ""]  # which engine guessed
    geo = tmp_path / "out.geojson"
    export_plan(session, [a.key, d.key], "geojson").write(geo)
    first, second = json.loads(geo.read_text())["features"]
    assert first["geometry"]["coordinates"] == [11.88512, 43.46744]
    assert first["properties"]["best"] == [11.88, 43.47]
    assert second["geometry"]["coordinates"] == [2.2945, 48.8584]
    assert second["properties"]["location_source"] == "confirmed"
    assert first["properties"]["engine"] == "locdiff" and second["properties"]["engine"] is None
    export_plan(session, [b.key], "gpx").write(tmp_path / "out.gpx")
    assert 'lat="-33.85680000"' in (tmp_path / "out.gpx").read_text()
    with pytest.raises(ValueError, match="predict them first"):
        export_plan(session, [c.key], "csv").write(tmp_path / "none.csv")
    with pytest.raises(ValueError, match="unknown export format"):
        export_plan(session, [a.key], "kml").write(tmp_path / "x.kml")
    assert not (tmp_path / "none.csv").exists() and not (tmp_path / "x.kml").exists()


def test_distance_is_great_circle():
    # Paris to London, about 344 km
    assert distance_km((48.8566, 2.3522), (51.5074, -0.1278)) == pytest.approx(343.5, abs=1.0)
