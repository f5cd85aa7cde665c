"""The window's geotagging work, Qt-free: track files read with each bad one named, lines thinned
for the map, neighbours in time found on both sides of a photo for the time-aware guess."""

import datetime as dt
from pathlib import Path

import numpy as np
from timed_photos import bumps, straight_track, write_gpx

from app.model.photo import Photo, PhotoPrediction
from app.workers.geotagging import MAX_LINE_POINTS, fusion_jobs, read_tracks, track_line
from locdiff_core.photo.photo_time import CaptureTime, TimeSettings

T0 = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC).timestamp()


def test_read_tracks_names_each_bad_file(tmp_path):
    good = write_gpx(tmp_path / "drive.gpx", straight_track((43.0, 11.0), (43.5, 11.5), T0, 600))
    bad = tmp_path / "notes.csv"
    bad.write_text("hello\n", encoding="utf-8")
    (g_path, g_track, g_problem), (b_path, b_track, b_problem) = read_tracks([good, bad])
    assert g_track.fixes == 61 and g_problem is None and g_path == good
    assert b_track is None and b_problem.startswith(str(bad)) and b_path == bad


def test_a_long_track_is_thinned_for_the_map_but_keeps_its_ends():
    track = straight_track((43.0, 11.0), (44.0, 12.0), T0, 100_000.0, every_s=1.0)
    line = track_line(track, 3, "#000000")
    (points,) = line.lines
    assert len(points) <= MAX_LINE_POINTS and line.fixes == 100_001 and line.has_elevation
    seg = track.segments[0]
    assert points[0] == (seg.lat[0], seg.lon[0]) and points[-1] == (seg.lat[-1], seg.lon[-1])


def photo(name, minutes, exif=None, predicted=False):
    local = dt.datetime(2024, 6, 1, 12, 0) + dt.timedelta(minutes=minutes)
    p = Photo(Path(f"/p/{name}"), f"/p/{name}", exif=exif, exif_read=True)
    p.capture = CaptureTime(local, dt.timedelta(hours=2))
    if predicted:
        density = bumps(((43.0, 11.0), 1.0))
        p.prediction = PhotoPrediction((43, 11), (43, 11), (), 1, 2, np.zeros((0, 2)), density)
    return p


def test_a_photo_between_two_placed_ones_is_bounded_by_both():
    photos = [
        photo("before.jpg", -30, exif=(43.0, 11.0)),
        photo("unknown.jpg", 0, predicted=True),
        photo("after.jpg", 45, exif=(43.0, 12.0)),
        photo("far.jpg", 60 * 9, exif=(40.0, 10.0)),  # beyond the window
        photo("alone.jpg", 60 * 30, predicted=True),
    ]
    jobs, none = fusion_jobs(photos, TimeSettings("Europe/Rome"), 6 * 3600.0)
    (job,) = jobs
    assert job.key == "/p/unknown.jpg" and none == ["/p/alone.jpg"]
    assert [(n.label, n.dt_s) for n in job.neighbours] == [
        ("before.jpg", -1800.0),
        ("after.jpg", 2700.0),
    ]
