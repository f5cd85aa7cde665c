"""Placing photos by time: interpolation on generated tracks with known truth, the maximum gap,
photos outside every track or without a time, several tracks, elevation."""

from pathlib import Path

import numpy as np
import pytest
from timed_photos import along, straight_track

from locdiff_core.earth import great_circle_distance_km
from locdiff_core.photo.track_match import MatchConfig, match_times, slerp
from locdiff_core.photo.tracks import Segment, Track

T0 = 1_717_236_000.0  # 2024-06-01 10:00:00 UTC
START, END = (43.4674483, 11.8851267), (43.7695604, 11.2558136)  # Arezzo to Florence


def truth(t: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    return along(START, END, T0, duration, t)


def drive(every_s: float = 10.0, duration: float = 3600.0, name: str = "drive.gpx") -> Track:
    return straight_track(START, END, T0, duration, every_s, name)


def metres(a_lat, a_lon, b_lat, b_lon) -> float:
    return 1000.0 * great_circle_distance_km(a_lat, a_lon, b_lat, b_lon)


def test_photos_between_fixes_land_on_the_truth_within_a_metre():
    track = drive()
    rng = np.random.default_rng(0)
    times = T0 + rng.uniform(0, 3600, 200)
    lat, lon = truth(times, 3600.0)
    matches = match_times(times, [track])
    assert all(m.placed for m in matches)
    worst = max(metres(m.lat, m.lon, a, b) for m, a, b in zip(matches, lat, lon, strict=True))
    assert worst < 1.0
    for m, t in zip(matches, times, strict=True):
        assert m.ele == pytest.approx(250.0 + 0.01 * (t - T0), abs=1e-6)
        assert m.gap_s <= 5.0 and m.track == "drive.gpx"
        assert m.why.startswith("track: drive.gpx, between two fixes, ")


def test_a_photo_at_a_fix_takes_it_exactly():
    track = drive()
    seg = track.segments[0]
    (m,) = match_times([seg.times[7]], [track])
    assert (m.lat, m.lon, m.gap_s) == (seg.lat[7], seg.lon[7], 0.0)
    assert m.why == "track: drive.gpx, at a fix"


def test_the_gap_rules():
    # fixes every 10 s, then a 20-minute hole, then fixes again
    t = np.concatenate([T0 + np.arange(0, 600, 10.0), T0 + 1800 + np.arange(0, 600, 10.0)])
    lat, lon = truth(t, 2400.0)
    track = Track(Path("holey.gpx"), (Segment.from_fixes(t, lat, lon),))
    last = T0 + 590
    photos = [last + 45, last + 61, last + 600, T0 - 30, T0 - 3600, T0 + 2390 + 59]
    near, too_far, middle, before, long_before, after = match_times(photos, [track])
    assert near.placed and near.gap_s == 45 and (near.lat, near.lon) == (lat[59], lon[59])
    assert near.why == "track: holey.gpx, 45 s from a fix"  # the nearest fix, not a line
    assert not too_far.placed and too_far.why.startswith("in a gap of the track: the nearest fix")
    assert "61 s away" in too_far.why and "more than 60 s" in too_far.why
    assert not middle.placed and "10 min away" in middle.why
    assert before.placed and before.gap_s == 30  # before the first fix, within the gap
    assert not long_before.placed
    assert long_before.why == "outside every track's time: the nearest fix is 60 min away"
    assert after.placed and after.gap_s == 59
    assert match_times([last + 61], [track], MatchConfig(max_gap_s=90))[0].placed
    wide = MatchConfig(interpolate_s=1300)  # now the hole is bridged along the great circle
    (bridged,) = match_times([last + 600], [track], wide)
    assert bridged.placed and "between two fixes, 10 min from a fix" in bridged.why
    f = np.array([600 / 1210])  # 600 s into the 1,210 s between the fixes
    mid_lat, mid_lon = slerp(lat[59:60], lon[59:60], lat[60:61], lon[60:61], f)
    assert metres(bridged.lat, bridged.lon, mid_lat[0], mid_lon[0]) < 1e-3


def test_no_time_no_track_no_elevation():
    track = drive()
    flat = Track(Path("flat.csv"), (Segment.from_fixes([T0, T0 + 10], [1.0, 1.0], [2.0, 2.001]),))
    none, placed = match_times([np.nan, T0 + 5], [flat])
    assert not none.placed and none.why == "no capture time"
    assert placed.placed and placed.ele is None
    assert match_times([T0], [])[0].why == "no track to match"
    assert match_times([T0 + 5], [track])[0].ele is not None


def test_the_closer_of_two_overlapping_tracks_wins():
    phone = drive(every_s=10.0, name="phone.gpx")
    watch = drive(every_s=1.0, name="watch.gpx")
    (m,) = match_times([T0 + 1234.5], [phone, watch])
    assert m.track == "watch.gpx" and m.gap_s == 0.5


def test_separate_segments_are_not_joined():
    a = Segment.from_fixes([T0, T0 + 10], [10.0, 10.0], [20.0, 20.0])
    b = Segment.from_fixes([T0 + 100, T0 + 110], [11.0, 11.0], [21.0, 21.0])
    track = Track(Path("two.gpx"), (a, b))
    (m,) = match_times([T0 + 55], [track], MatchConfig(max_gap_s=40, interpolate_s=300))
    assert not m.placed  # 45 s from each end: the segments are two recordings, not one line
    (m,) = match_times([T0 + 55], [track], MatchConfig(max_gap_s=50, interpolate_s=300))
    assert (m.lat, m.lon, m.why) == (10.0, 20.0, "track: two.gpx, 45 s from a fix")


def test_slerp_crosses_the_antimeridian_the_short_way():
    lat, lon = slerp(
        np.array([0.0]), np.array([179.0]), np.array([0.0]), np.array([-179.0]), np.array([0.5])
    )
    assert abs(lat[0]) < 1e-9 and abs(abs(lon[0]) - 180.0) < 1e-9


def test_config_is_checked():
    with pytest.raises(ValueError, match="max_gap_s must be a number of seconds"):
        MatchConfig(max_gap_s=-1)
    with pytest.raises(ValueError, match="interpolate_s"):
        MatchConfig(interpolate_s=float("nan"))
