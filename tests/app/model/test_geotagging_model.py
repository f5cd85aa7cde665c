"""Geotagging by time in the session: proposals as their own state and pin, accepted with their
elevation and written with it; the time-aware guess taken by "accept"; the helpers."""

import numpy as np

from app.model.geotagging import ProposalSummary, ProposedPlace, TimeGuess, is_track_file, thin
from app.model.photo import PhotoPrediction, PhotoState
from app.model.pins import PinKind
from app.model.session import Session, identify


def session_of(*names):
    session = Session()
    session.add_found(identify(f"/photos/{n}") for n in names)
    return session


def test_a_proposal_is_its_own_state_pin_and_is_accepted_with_its_elevation():
    session = session_of("a.jpg", "b.jpg")
    a, b = session.photos
    place = ProposedPlace(43.5, 11.8, 256.5, "track: trip.gpx, 12 s from a fix", "zone Europe/Rome")
    session.set_proposals({a.key: place}, {b.key: "outside every track's time: 2 h away"})
    session.set_exif(a.key, None)
    session.set_exif(b.key, None)
    assert a.state is PhotoState.PROPOSED
    assert a.status_text() == "from track · trip.gpx, 12 s from a fix"
    assert b.status_text() == "no location · not on a track: outside every track's time: 2 h away"
    assert [(p.key, p.kind) for p in session.pins()] == [(a.key, PinKind.PROPOSED)]
    assert session.accept_proposed(session.keys()) == [a.key]
    assert a.state is PhotoState.CONFIRMED and a.confirmed_alt == 256.5
    (item,) = session.write_plan(session.keys())
    assert (item.lat, item.lon, item.alt) == (43.5, 11.8, 256.5)
    session.confirm(a.key, 44.0, 12.0)  # moved by hand: the track's elevation no longer holds
    assert session.write_plan([a.key])[0].alt is None
    session.set_proposals({}, {})
    assert b.track_note is None


def test_accept_takes_the_time_aware_guess_when_there_is_one():
    session = session_of("a.jpg")
    (a,) = session.photos
    pred = PhotoPrediction((-33.4, -70.6), (-33.4, -70.6), (), 100.0, 900.0, np.zeros((0, 2)))
    session.set_prediction(a.key, pred)
    session.set_time_guesses({a.key: TimeGuess((43.4, 11.9), 40.0, 120.0, "bounded", 0.2, 1)})
    assert (43.4, 11.9) in session.points_of(a)
    session.accept_best([a.key])
    assert a.confirmed == (43.4, 11.9)
    session.set_time_guesses({a.key: None})
    session.accept_best([a.key])
    assert a.confirmed == (-33.4, -70.6)


def test_helpers():
    assert is_track_file("Trip.GPX") and is_track_file("a.kmz") and not is_track_file("a.jpg")
    points = [(float(i), 0.0) for i in range(1000)]
    thinned = thin(points, 10)
    assert len(thinned) == 10 and thinned[0] == points[0] and thinned[-1] == points[-1]
    assert thin(points[:5], 10) == points[:5]
    summary = ProposalSummary(2, {"no capture time": 1, "outside every track's time": 3})
    assert summary.text() == (
        "2 photos placed from tracks; 3 left alone: outside every track's time; "
        "1 left alone: no capture time"
    )
    assert ProposalSummary().text() == "no photo without a position to match"
