"""Geotagging by time end to end in the core: camera photos with a zone and a wrong clock
matched to a track within a metre of the truth, the photos with GPS as a track, the offset
from a reference photo, a daylight-saving change, and the write with its undo byte for byte."""

import datetime as dt
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from timed_photos import along, camera_photo, photo_with, straight_track

from locdiff_core.earth import great_circle_distance_km
from locdiff_core.photo import geotag
from locdiff_core.photo.gps import read_gps
from locdiff_core.photo.photo_time import TimeSettings, parse_offset, read_capture_time
from locdiff_core.photo.track_match import MatchConfig
from locdiff_core.photo.tracks import Segment, Track
from locdiff_core.photo.undo import undo_last_batch
from locdiff_core.photo.writing import BackupMode, WriteConfig, write_gps, write_gps_each

ROME = ZoneInfo("Europe/Rome")
START, END = (43.4674483, 11.8851267), (43.7695604, 11.2558136)
T0 = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC).timestamp()
FAST = 90.0  # the camera's clock runs 90 s ahead


def metres(a, b) -> float:
    return 1000.0 * great_circle_distance_km(a[0], a[1], b[0], b[1])


@pytest.fixture
def trip(tmp_path):
    """Five camera photos taken along an hour's drive, their wall-clock times in Rome and the
    camera 90 s fast; the true positions; the track."""
    track = straight_track(START, END, T0, 3600.0)
    utc = T0 + np.array([100.25, 900.5, 1800.0, 2700.75, 3500.0])
    photos = []
    for i, t in enumerate(utc):
        local = dt.datetime.fromtimestamp(t + FAST, ROME).replace(tzinfo=None)
        photos.append(camera_photo(tmp_path / f"cam{i}.jpg", local))
    lat, lon = along(START, END, T0, 3600.0, utc)
    return photos, list(zip(lat, lon, strict=True)), track


def test_camera_photos_land_within_a_metre_with_the_zone_and_the_offset(trip):
    photos, truth, track = trip
    zone, how = geotag.camera_zone([track])
    assert (zone, how) == ("Europe/Rome", "from drive.gpx's first fix")
    clocks = geotag.read_times(photos)
    right = TimeSettings(zone=zone, offset=parse_offset("-00:01:30"))
    proposals = geotag.propose(clocks, [track], right)
    assert all(r.ok and r.value.placed for r in proposals)
    for r, want in zip(proposals, truth, strict=True):
        assert metres((r.value.match.lat, r.value.match.lon), want) < 1.0
        assert r.value.utc.how == "zone Europe/Rome, clock -00:01:30"
    # without the offset every pin moves by 90 s of driving (about 1.4 km at this speed)
    wrong = geotag.propose(clocks, [track], TimeSettings(zone=zone))
    moved = [
        metres((r.value.match.lat, r.value.match.lon), w) for r, w in zip(wrong, truth, strict=True)
    ]
    assert all(1000 < m < 2000 for m in moved)


def test_the_offset_follows_from_one_photo_put_where_it_was_taken(trip):
    photos, truth, track = trip
    capture = read_capture_time(photos[1])  # taken 900.5 s into the drive, between two fixes
    utc, away, label = geotag.time_at_place([track], *truth[1])
    assert label == "drive.gpx" and away < 0.5  # on the line between two fixes
    offset = geotag.offset_from_reference(capture, "Europe/Rome", utc)
    assert abs(offset.total_seconds() + FAST) <= 0.05  # -90 s, between fixes 10 s apart


def test_a_place_passed_twice_takes_the_pass_nearest_in_time():
    out = np.linspace(0, 1, 61)
    lat = np.concatenate([10 + out, 11 - out])  # there and back along a meridian
    t = T0 + 60.0 * np.arange(len(lat))
    track = Track(Path("loop.gpx"), (Segment.from_fixes(t, lat, np.full(len(lat), 20.0)),))
    first, _, _ = geotag.time_at_place([track], 10.5, 20.0, near_utc=T0)
    second, _, _ = geotag.time_at_place([track], 10.5, 20.0, near_utc=T0 + 7000)
    assert first == T0 + 60 * 30 and second == T0 + 60 * 91
    with pytest.raises(ValueError, match="open a track first"):
        geotag.time_at_place([], 0.0, 0.0)


def test_photos_with_gps_guide_the_others(tmp_path):
    """A phone's photos (with GPS) are the track for a camera's (without): same zone."""
    base = dt.datetime(2024, 6, 1, 12, 0, 0)
    phone_a = camera_photo(tmp_path / "phone_a.jpg", base)
    phone_b = camera_photo(tmp_path / "phone_b.jpg", base + dt.timedelta(seconds=120))
    write_gps([phone_a], 43.0, 11.0, 100.0, WriteConfig(backup=BackupMode.NONE))
    write_gps([phone_b], 43.01, 11.0, 110.0, WriteConfig(backup=BackupMode.NONE))
    camera = camera_photo(tmp_path / "cam.jpg", base + dt.timedelta(seconds=30))
    clocks = geotag.read_times([phone_a, camera, phone_b])
    results = geotag.propose(clocks, [], TimeSettings(zone="Europe/Rome"))
    kept_a, placed, kept_b = (r.value for r in results)
    assert kept_b.match.why == kept_a.match.why
    assert kept_a.match.why == "already has a position (kept)" and not kept_a.placed
    assert placed.placed and placed.match.track == geotag.NEIGHBOURS
    assert placed.match.lat == pytest.approx(43.0025, abs=1e-6)  # a quarter of the way
    assert placed.match.ele == pytest.approx(102.5)
    assert "between two fixes, 30 s from a fix" in placed.match.why
    alone = geotag.propose(clocks, [], TimeSettings(zone="Europe/Rome"), use_neighbours=False)
    assert alone[1].value.match.why == "no track to match"


def test_across_a_daylight_saving_change(tmp_path):
    """The night the clocks go forward in Rome: photos either side land where they were."""
    t0 = dt.datetime(2024, 3, 31, 0, 0, tzinfo=dt.UTC).timestamp()  # 01:00 CET
    track = straight_track(START, END, t0, 7200.0, every_s=5.0)
    utc = t0 + np.array([1800.0, 3599.0, 3601.0, 5400.0])  # the change is at 01:00 UTC
    photos = []
    for i, t in enumerate(utc):
        local = dt.datetime.fromtimestamp(t, ROME).replace(tzinfo=None)
        photos.append(camera_photo(tmp_path / f"n{i}.jpg", local))
    assert read_capture_time(photos[1]).local.hour == 1  # 01:59:59 CET
    assert read_capture_time(photos[2]).local.hour == 3  # 03:00:01 CEST
    results = geotag.propose(geotag.read_times(photos), [track], TimeSettings(zone="Europe/Rome"))
    lat, lon = along(START, END, t0, 7200.0, utc)
    for r, want in zip(results, zip(lat, lon, strict=True), strict=True):
        assert metres((r.value.match.lat, r.value.match.lon), want) < 1.0


def test_photos_without_a_time_or_unreadable_say_so(tmp_path, trip):
    _, _, track = trip
    no_time = photo_with(tmp_path / "no_time.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    results = geotag.propose(geotag.read_times([no_time, broken]), [track], TimeSettings())
    assert results[0].ok and results[0].value.match.why == "no capture time"
    assert not results[1].ok
    assert results[1].error.message == (
        "not an image Pillow can read (the start of the file is text)"
    )


def test_written_positions_with_altitude_and_one_undo_puts_every_byte_back(trip, tmp_path):
    photos, truth, track = trip
    before = {p: p.read_bytes() for p in photos}
    settings = TimeSettings(zone="Europe/Rome", offset=dt.timedelta(seconds=-FAST))
    proposals = geotag.propose(geotag.read_times(photos), [track], settings)
    items = [(r.path, r.value.match.lat, r.value.match.lon, r.value.match.ele) for r in proposals]
    results = write_gps_each(items)  # originals kept next to the photos, for the undo
    assert all(r.ok for r in results)
    for (path, *_, ele), want in zip(items, truth, strict=True):
        fix = read_gps(path)
        assert metres((fix.lat, fix.lon), want) < 1.0
        assert math.isclose(fix.alt, ele, abs_tol=0.001)
    undone = undo_last_batch()
    assert len(undone) == len(photos) and all(r.ok for r in undone)
    assert all(p.read_bytes() == before[p] for p in photos)


def test_write_gps_each_refuses_a_bad_batch_before_touching_a_file(trip):
    photos, _, _ = trip
    before = photos[0].read_bytes()
    with pytest.raises(ValueError, match="given twice"):
        write_gps_each([(photos[0], 1.0, 2.0, None), (photos[0], 3.0, 4.0, None)])
    with pytest.raises(ValueError, match="latitude 95"):
        write_gps_each([(photos[0], 1.0, 2.0, None), (photos[1], 95.0, 4.0, None)])
    assert photos[0].read_bytes() == before and read_gps(photos[0]) is None
    assert write_gps_each([]) == []


def test_the_match_rules_reach_the_proposals(trip):
    photos, _, track = trip
    late = Track(
        track.path,
        (
            Segment.from_fixes(
                track.segments[0].times + 20_000, track.segments[0].lat, track.segments[0].lon
            ),
        ),
    )
    results = geotag.propose(
        geotag.read_times(photos[:1]), [late], TimeSettings(), MatchConfig(max_gap_s=10)
    )
    assert results[0].value.match.why.startswith("outside every track's time")


def test_the_camera_offset_is_not_applied_to_the_phone(tmp_path):
    base = dt.datetime(2024, 6, 1, 12, 0, 0)
    phone_a = camera_photo(tmp_path / "phone_a.jpg", base, offset="+02:00")
    phone_b = camera_photo(tmp_path / "phone_b.jpg", base + dt.timedelta(seconds=100))
    write_gps([phone_a], 43.0, 11.0, None, WriteConfig(backup=BackupMode.NONE))
    write_gps([phone_b], 43.1, 11.0, None, WriteConfig(backup=BackupMode.NONE))
    # the camera is 90 s fast: its 12:01:40 is 12:00:10 on the phone's clock
    camera = camera_photo(tmp_path / "cam.jpg", base + dt.timedelta(seconds=100))
    clocks = geotag.read_times([phone_a, phone_b, camera])
    fast = TimeSettings(zone="Europe/Rome", offset=dt.timedelta(seconds=-90))
    placed = geotag.propose(clocks, [], fast)[2].value.match
    assert placed.lat == pytest.approx(43.01, abs=1e-6)  # a tenth of the way from a to b
