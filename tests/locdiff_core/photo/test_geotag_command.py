"""``locdiff gps geotag``: a GPX track and camera photos with a wrong clock, a dry run that
writes nothing, the write with altitude, the undo byte for byte, and bad arguments."""

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from timed_photos import along, camera_photo, photo_with, straight_track, write_gpx

from locdiff_core.earth import great_circle_distance_km
from locdiff_core.photo.gps import read_gps
from trainer import cli

ROME = ZoneInfo("Europe/Rome")
START, END = (43.4674483, 11.8851267), (43.7695604, 11.2558136)
T0 = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def trip(tmp_path):
    """A GPX of an hour's drive (a fix every 10 s); three photos from a camera 90 s fast in
    Rome's time, one taken after the drive, one without a time."""
    track = straight_track(START, END, T0, 3600.0)
    gpx = write_gpx(tmp_path / "drive.gpx", track)
    folder = tmp_path / "photos"
    folder.mkdir()
    utc = T0 + np.array([605.0, 1803.0, 3007.0, 9000.0])  # between fixes, and after
    for i, t in enumerate(utc):
        local = dt.datetime.fromtimestamp(t + 90, ROME).replace(tzinfo=None)
        camera_photo(folder / f"cam{i}.jpg", local)
    photo_with(folder / "no_time.jpg")
    lat, lon = along(START, END, T0, 3600.0, utc[:3])
    return gpx, folder, list(zip(utc[:3], lat, lon, strict=True))


def lines(capsys):
    captured = capsys.readouterr()
    out = {Path(x.split(": ", 1)[0]).name: x.split(": ", 1)[1] for x in captured.out.splitlines()}
    return out, captured.err


def test_a_dry_run_prints_every_photo_and_writes_nothing(trip, capsys):
    gpx, folder, _ = trip
    before = {p: p.read_bytes() for p in folder.iterdir()}
    args = ["gps", "geotag", str(folder), "--track", str(gpx), "--offset", "-00:01:30"]
    assert cli.main([*args, "--dry-run"]) == 0
    out, err = lines(capsys)
    assert "camera zone Europe/Rome (from Arezzo to Florence's first fix)" in err
    assert "3 of 5 photos placed" in err
    assert out["cam0.jpg"].startswith("43.")
    assert "(track: Arezzo to Florence, between two fixes" in out["cam0.jpg"]
    assert "taken 2024-06-01 12:11:35 (zone Europe/Rome, clock -00:01:30)" in out["cam0.jpg"]
    assert out["cam3.jpg"].startswith("outside every track's time")
    assert out["no_time.jpg"].startswith("no capture time")
    assert {p: p.read_bytes() for p in folder.iterdir()} == before


def test_the_write_lands_within_a_metre_and_undo_puts_every_byte_back(trip, capsys):
    gpx, folder, truth = trip
    before = {p: p.read_bytes() for p in folder.iterdir()}
    args = ["gps", "geotag", str(folder), "--track", str(gpx), "--offset", "-90"]
    assert cli.main(args) == 0
    out, err = lines(capsys)
    assert "3 of 5 photos placed, 3 written" in err
    assert out["cam1.jpg"].endswith("original kept as " + str(folder / "cam1.jpg_original"))
    for i, (t, lat, lon) in enumerate(truth):
        fix = read_gps(folder / f"cam{i}.jpg")
        assert 1000 * great_circle_distance_km(fix.lat, fix.lon, lat, lon) < 1.0
        assert fix.alt == pytest.approx(250.0 + 0.01 * (t - T0), abs=0.01)  # the track's
    assert read_gps(folder / "cam3.jpg") is None
    # a second run keeps the positions now there
    assert cli.main([*args, "--dry-run"]) == 0
    again, _ = lines(capsys)
    assert again["cam0.jpg"].startswith("already has a position (kept)")
    assert cli.main(["gps", "undo"]) == 0
    capsys.readouterr()
    for path, data in before.items():
        assert path.read_bytes() == data


def test_bad_arguments_name_the_problem(trip, tmp_path, capsys):
    gpx, folder, _ = trip
    bad = tmp_path / "bad.gpx"
    bad.write_text("<gpx><trk><trkseg><trkpt lat='1' lon='2'>\n<time>x</trk></gpx>")
    assert cli.main(["gps", "geotag", str(folder), "--track", str(bad)]) == 2
    assert "bad.gpx" in capsys.readouterr().err
    assert cli.main(["gps", "geotag", str(folder), "--track", str(gpx), "--tz", "Rome"]) == 2
    assert "unknown time zone 'Rome' (did you mean Europe/Rome" in capsys.readouterr().err
    assert cli.main(["gps", "geotag", str(folder), "--track", str(gpx), "--offset", "1:2:3:4"]) == 2
    assert "clock offset '1:2:3:4'" in capsys.readouterr().err
    missing = tmp_path / "nowhere.gpx"
    assert cli.main(["gps", "geotag", str(folder), "--track", str(missing)]) == 2
    assert "nowhere.gpx" in capsys.readouterr().err


def test_without_a_track_the_photos_with_gps_guide_the_others(tmp_path, capsys):
    folder = tmp_path / "day"
    folder.mkdir()
    base = dt.datetime(2024, 6, 1, 12, 0, 0)
    camera_photo(folder / "phone_a.jpg", base, offset="+02:00")  # a phone writes its offset
    camera_photo(folder / "phone_b.jpg", base + dt.timedelta(seconds=60), offset="+02:00")
    camera_photo(folder / "camera.jpg", base + dt.timedelta(seconds=15))
    assert cli.main(["gps", "geotag", str(folder), "--dry-run"]) == 2
    assert "nothing to match against: give --track FILE" in capsys.readouterr().err
    assert (
        cli.main(["gps", "write", str(folder / "phone_a.jpg"), "--lat", "43.0", "--lon", "11.0"])
        == 0
    )
    assert (
        cli.main(["gps", "write", str(folder / "phone_b.jpg"), "--lat", "43.1", "--lon", "11.0"])
        == 0
    )
    capsys.readouterr()
    assert cli.main(["gps", "geotag", str(folder), "--dry-run"]) == 0
    out, err = lines(capsys)
    assert "camera zone Europe/Rome (from the position of phone_a.jpg)" in err
    assert out["camera.jpg"].startswith("43.0250000 N, 11.0000000 E (track: photos with GPS, ")
    assert out["phone_a.jpg"].startswith("already has a position (kept)")


def test_json_lines_for_scripts(trip, capsys):
    gpx, folder, truth = trip
    args = ["gps", "geotag", str(folder), "--track", str(gpx), "--offset", "-90", "--json"]
    assert cli.main(args) == 0
    docs = {Path(d["file"]).name: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert len(docs) == 5
    cam0 = docs["cam0.jpg"]
    t, lat, lon = truth[0]
    assert (
        cam0["placed"] and 1000 * great_circle_distance_km(cam0["lat"], cam0["lon"], lat, lon) < 1
    )
    assert cam0["utc"] == dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
    assert cam0["taken"] == "2024-06-01T12:11:35" and cam0["time_from"].startswith(
        "zone Europe/Rome"
    )
    assert cam0["written"].startswith("done (") and cam0["track"] == "Arezzo to Florence"
    assert not docs["no_time.jpg"]["placed"] and docs["no_time.jpg"]["why"] == "no capture time"
