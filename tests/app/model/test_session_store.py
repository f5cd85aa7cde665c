"""The session file: a round trip of every kept field, only changed rows written, removed photos
dropped, the order kept, and files that are not sessions (or from a newer app) refused."""

import dataclasses
import sqlite3

import numpy as np
import pytest
from session_helpers import prediction

from app.model.session import Session, identify
from app.model.session_store import SessionStore
from locdiff_core.engines import Engine


def session_of(*names):
    session = Session()
    session.add_found(identify(f"/photos/{n}") for n in names)
    return session


def test_every_kept_field_comes_back(tmp_path):
    session = session_of("a.jpg", "b.jpg", "c.jpg")
    a, b, c = session.photos
    pred = dataclasses.replace(prediction(engine=Engine.GEOCLIP), model="run0: degree 8, ViT-L-14")
    session.set_prediction(a.key, pred)
    session.confirm(b.key, 43.5, 11.8, 256.5, source="a track")
    session.mark_written(b.key)
    store = SessionStore(tmp_path / "s.sqlite")
    assert store.save(session.photos) == 3
    store.put({"filter": "Confirmed"})
    store.close()
    back = SessionStore(tmp_path / "s.sqlite")
    ra, rb, rc = back.load()
    assert [r.key for r in (ra, rb, rc)] == [a.key, b.key, c.key]
    assert ra.prediction.engine is Engine.GEOCLIP and ra.prediction.best == pred.best
    assert ra.prediction.model == "run0: degree 8, ViT-L-14"
    assert ra.prediction.candidates == pred.candidates
    assert np.array_equal(ra.prediction.samples, pred.samples)
    assert np.array_equal(ra.prediction.density, pred.density)
    assert (rb.confirmed, rb.confirmed_alt, rb.confirmed_from) == ((43.5, 11.8), 256.5, "a track")
    assert rb.written == ((43.5, 11.8), "a track") and rc.prediction is None
    assert back.get("filter") == "Confirmed" and back.get("missing", "x") == "x"


def test_only_changed_rows_are_written_and_removed_photos_dropped(tmp_path):
    session = session_of("a.jpg", "b.jpg", "c.jpg")
    store = SessionStore(tmp_path / "s.sqlite")
    store.save(session.photos)
    a, b, c = session.photos
    session.confirm(c.key, 1.0, 2.0)
    assert store.save(session.photos, [c.key]) == 1
    session.remove([a.key])
    assert store.save(session.photos, []) == 0
    assert [r.key for r in store.load()] == [b.key, c.key]
    assert store.load()[1].confirmed == (1.0, 2.0)


def test_what_is_not_a_session_is_refused_by_name(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(ValueError, match=r"junk\.sqlite: not a LocDiff Studio session"):
        SessionStore(junk)
    newer = tmp_path / "newer.sqlite"
    SessionStore(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value='99' WHERE name='format'")
    with pytest.raises(ValueError, match="a session of a newer LocDiff Studio"):
        SessionStore(newer)


def test_a_damaged_row_is_left_out(tmp_path):
    session = session_of("a.jpg", "b.jpg")
    store = SessionStore(tmp_path / "s.sqlite")
    store.save(session.photos)
    store._db.execute("UPDATE photos SET state='{broken' WHERE key=?", (session.photos[0].key,))
    assert [r.key for r in store.load()] == [session.photos[1].key]


def test_restored_predictions_are_not_written_again(tmp_path):
    session = session_of("a.jpg", "b.jpg")
    for photo in session.photos:
        session.set_prediction(photo.key, prediction())
    SessionStore(tmp_path / "s.sqlite").save(session.photos)
    store = SessionStore(tmp_path / "s.sqlite")
    store._db.executescript(
        "INSERT INTO meta VALUES ('array_writes', '0');"
        "CREATE TRIGGER count_arrays AFTER UPDATE OF arrays ON photos BEGIN "
        "UPDATE meta SET value = value + 1 WHERE name = 'array_writes'; END;"
    )
    restored = Session()
    stored = store.load()
    restored.add_found((s.path, s.key) for s in stored)
    for s in stored:
        restored.set_prediction(s.key, s.prediction)
    store.save(restored.photos)  # what the window does after a restore
    assert store.get("array_writes") == "0"
    restored.set_prediction(stored[0].key, prediction(best=(1.0, 2.0)))  # a new one is
    store.save(restored.photos, [stored[0].key])
    assert store.get("array_writes") == "1"


def test_a_file_that_is_no_session_says_what_it_holds(tmp_path):
    notes = tmp_path / "notes.locdiff-session"
    notes.write_text("my trip to Arezzo\n")
    with pytest.raises(ValueError) as caught:
        SessionStore(notes)
    assert str(caught.value) == (
        f"{notes}: not a LocDiff Studio session (the start of the file is text); "
        "open a .locdiff-session file, or move this one away to start afresh"
    )
    empty = tmp_path / "empty.locdiff-session"
    empty.write_bytes(b"")
    SessionStore(empty).close()  # an empty file becomes a new session
    damaged = tmp_path / "damaged.locdiff-session"
    store = SessionStore(damaged)
    store.save(session_of("a.jpg", "b.jpg").photos)
    store.close()
    data = bytearray(damaged.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)  # the database's first page, past the header
    damaged.write_bytes(data)
    with pytest.raises(ValueError) as caught:
        SessionStore(damaged)
    damage = "the session file is damaged; move it away to start afresh"
    assert str(caught.value) == f"{damaged}: {damage}"
