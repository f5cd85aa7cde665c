"""Capture times: EXIF with sub-seconds and offsets, XMP, zones with daylight saving, clock
offsets; checked against exiftool on the real sample photos."""

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from timed_photos import photo_with

from locdiff_core.photo.photo_time import (
    CaptureTime,
    TimeSettings,
    format_offset,
    guess_zone,
    parse_exif_datetime,
    parse_offset,
    read_capture_time,
    to_utc,
    zone,
)

SAMPLES = Path(__file__).parents[3] / ".." / "shared" / "testdata" / "exif-samples"
UTC = dt.UTC


def test_exif_time_with_subseconds_and_offset(tmp_path):
    photo = photo_with(
        tmp_path / "a.jpg",
        DateTimeOriginal="2024:06:01 12:00:05",
        SubSecTimeOriginal="25",
        OffsetTimeOriginal="+02:00",
    )
    found = read_capture_time(photo)
    assert found == CaptureTime(dt.datetime(2024, 6, 1, 12, 0, 5, 250_000), dt.timedelta(hours=2))
    utc = to_utc(found, TimeSettings(zone="America/New_York"))  # the file's offset wins
    assert utc.seconds == dt.datetime(2024, 6, 1, 10, 0, 5, 250_000, tzinfo=UTC).timestamp()
    assert utc.how == "offset +02:00 in the file" and utc.note == ""


def test_a_wall_clock_time_takes_the_zone_with_its_daylight_saving(tmp_path):
    summer = read_capture_time(
        photo_with(tmp_path / "s.jpg", DateTimeOriginal="2024:07:01 12:00:00")
    )
    winter = read_capture_time(
        photo_with(tmp_path / "w.jpg", DateTimeOriginal="2024:01:15 12:00:00")
    )
    rome = TimeSettings(zone="Europe/Rome")
    assert to_utc(summer, rome).seconds == dt.datetime(2024, 7, 1, 10, tzinfo=UTC).timestamp()
    assert to_utc(winter, rome).seconds == dt.datetime(2024, 1, 15, 11, tzinfo=UTC).timestamp()
    assert to_utc(summer, rome).how == "zone Europe/Rome"


def test_the_hours_a_daylight_saving_change_repeats_or_skips():
    rome = TimeSettings(zone="Europe/Rome")
    twice = to_utc(CaptureTime(dt.datetime(2024, 10, 27, 2, 30)), rome)
    assert twice.seconds == dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC).timestamp()  # CEST
    assert twice.note == "2024-10-27 02:30 happens twice in Europe/Rome; the first is used"
    skipped = to_utc(CaptureTime(dt.datetime(2024, 3, 31, 2, 30)), rome)
    assert "does not exist in Europe/Rome" in skipped.note
    # on either side of the change the offset is the zone's own, never a fixed hour
    before = to_utc(CaptureTime(dt.datetime(2024, 3, 31, 1, 59)), rome).seconds
    after = to_utc(CaptureTime(dt.datetime(2024, 3, 31, 3, 1)), rome).seconds
    assert after - before == 120  # two minutes of real time across the skipped hour


def test_the_clock_offset_is_added_to_the_camera_time():
    fast = TimeSettings(zone="UTC", offset=parse_offset("-00:01:30"))  # the camera runs 90 s fast
    utc = to_utc(CaptureTime(dt.datetime(2024, 6, 1, 10, 1, 30)), fast)
    assert utc.seconds == dt.datetime(2024, 6, 1, 10, 0, tzinfo=UTC).timestamp()
    assert utc.how == "zone UTC, clock -00:01:30"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("-00:01:30", -90),
        ("+01:00:00", 3600),
        ("02:05", 125),
        ("-90", -90),
        ("1.5", 1.5),
        ("+10:00:00.5", 36000.5),
    ],
)
def test_offsets_parse(text, seconds):
    assert parse_offset(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "00:61:00", "-00:00:75", "+-5"])
def test_bad_offsets_say_the_form(text):
    with pytest.raises(ValueError, match=r"use \[\+-\]hh:mm:ss"):
        parse_offset(text)


def test_offsets_print_back():
    assert format_offset(dt.timedelta(seconds=-90)) == "-00:01:30"
    assert format_offset(dt.timedelta(hours=26, seconds=1)) == "+26:00:01"
    assert format_offset(dt.timedelta(seconds=0.5)) == "+00:00:00.5"


def test_zones_are_iana_names_and_a_typo_gets_suggestions():
    assert zone("Europe/Rome").key == "Europe/Rome"
    with pytest.raises(ValueError, match="did you mean Europe/Rome"):
        zone("rome")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        TimeSettings(zone="Mars/Olympus")


def test_zone_guessed_offline_from_a_position():
    assert guess_zone(43.4674, 11.8851) == "Europe/Rome"
    assert guess_zone(-33.45, -70.67) == "America/Santiago"
    assert guess_zone(40.7, -74.0) == "America/New_York"


def test_photos_without_a_usable_time(tmp_path):
    assert read_capture_time(photo_with(tmp_path / "none.jpg")) is None
    unset = photo_with(tmp_path / "zero.jpg", DateTimeOriginal="0000:00:00 00:00:00")
    assert read_capture_time(unset) is None
    assert parse_exif_datetime("2024:02:30 10:00:00") is None  # no such day
    digitized = photo_with(tmp_path / "dig.jpg", DateTimeDigitized="2024:06:01 08:00:00")
    assert read_capture_time(digitized).tag == "DateTimeDigitized"
    png = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(png)
    assert read_capture_time(png) is None


def test_an_xmp_sidecar_time_with_its_zone(tmp_path):
    photo = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(photo)
    (tmp_path / "x.xmp").write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        'exif:DateTimeOriginal="2024-06-01T12:00:05.5+02:00"/></rdf:RDF></x:xmpmeta>'
    )
    found = read_capture_time(photo)
    assert found == CaptureTime(
        dt.datetime(2024, 6, 1, 12, 0, 5, 500_000), dt.timedelta(hours=2), "XMP DateTimeOriginal"
    )


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
def test_the_sample_photos_agree_with_exiftool():
    if not SAMPLES.is_dir():
        pytest.skip(f"test photos not found at {SAMPLES}")
    photos = sorted(p for p in SAMPLES.rglob("*") if p.suffix.lower() in (".jpg", ".tiff", ".tif"))
    out = subprocess.run(
        [
            "exiftool",
            "-j",
            "-q",
            "-q",
            "-m",
            "-EXIF:DateTimeOriginal",
            "-SubSecTimeOriginal",
            *map(str, photos),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    docs = {Path(d["SourceFile"]).resolve(): d for d in json.loads(out.stdout or "[]")}
    compared = 0
    for photo in photos:
        doc = docs.get(photo.resolve(), {})
        want = parse_exif_datetime(str(doc.get("DateTimeOriginal", "")))  # EXIF's, not a maker's
        if want is None:
            continue
        try:
            found = read_capture_time(photo)
        except Exception:  # a damaged sample: the reader may refuse it, never answer wrongly
            continue
        assert found is not None and found.local.replace(microsecond=0) == want, photo.name
        compared += 1
    assert compared >= 10
