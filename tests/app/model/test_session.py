"""The Qt-free session: adding photos, states, pins, corrections, places, exports."""

import os

import pytest
from session_helpers import add, prediction

from app.model.photo import PhotoState
from app.model.pins import PinKind
from app.model.session import Session, distance_km, place_key


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


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
    assert photo.location() == ((43.5, 11.9), PinKind.EXIF)  # a guess never displaces it
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


def test_distance_is_great_circle():
    # Paris to London, about 344 km
    assert distance_km((48.8566, 2.3522), (51.5074, -0.1278)) == pytest.approx(343.5, abs=1.0)


def test_the_apps_own_write_read_back_is_not_evidence(photos):
    session = Session()
    (photo,) = add(session, [photos / "a.jpg"])
    session.set_exif(photo.key, None)
    session.set_prediction(photo.key, prediction())
    session.accept_best([photo.key])
    assert photo.confirmed_from == "a guess"
    session.mark_written(photo.key)
    session.clear_confirmation([photo.key])
    session.set_exif(photo.key, (43.470001, 11.880001))  # read back, as rationals
    assert photo.exif_written_from == "a guess"
    assert photo.status_text() == "predicted · has EXIF GPS (written here from a guess)"
    assert photo.location() == ((43.470001, 11.880001), PinKind.EXIF)
    session.set_exif(photo.key, (40.0, 10.0))  # another program moved it: the file's own again
    assert photo.exif_written_from is None
    session.confirm(photo.key, 1.0, 2.0)
    assert session.confirmed_of([photo.key]) == {photo.key: ((1.0, 2.0), None, "a correction")}
