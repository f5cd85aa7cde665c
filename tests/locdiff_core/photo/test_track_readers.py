"""Reading track files: GPX 1.0/1.1 (segments, routes, extensions, offsets, sub-seconds),
KML and KMZ (gx:Track, timed placemarks, a LineString with a TimeSpan), GeoJSON and CSV; and
every broken file named with its problem (and line), never a traceback."""

import csv
import datetime as dt
import io
import math
import re
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locdiff_core.earth import great_circle_distance_km
from locdiff_core.photo.track_readers import read_track
from locdiff_core.photo.tracks import TrackError


def utc(*args) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


GPX11 = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">
  <metadata><name>Tuscany</name></metadata>
  <trk><name>Day one</name>
    <trkseg>
      <trkpt lat="43.4674483" lon="11.8851267"><ele>250.5</ele><time>2024-06-01T10:00:00Z</time>
        <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>120</gpxtpx:hr>
        </gpxtpx:TrackPointExtension></extensions></trkpt>
      <trkpt lat="43.468" lon="11.886"><ele>251</ele>
        <time>2024-06-01T12:00:10.250+02:00</time></trkpt>
      <trkpt lat="43.469" lon="11.887"></trkpt>
    </trkseg>
    <trkseg>
      <trkpt lat="43.5" lon="11.9"><time>2024-06-01T11:00:00Z</time></trkpt>
    </trkseg>
  </trk>
  <trk><name>Day two</name><trkseg>
      <trkpt lat="43.7695604" lon="11.2558136"><time>2024-06-02T09:00:00Z</time></trkpt>
  </trkseg></trk>
  <rte><name>planned</name>
    <rtept lat="43.1" lon="11.1"><time>2024-06-03T08:00:00Z</time></rtept>
    <rtept lat="43.2" lon="11.2"><time>2024-06-03T08:05:00Z</time></rtept>
  </rte>
  <rte><rtept lat="1" lon="2"/></rte>
</gpx>
"""


def test_gpx_11_tracks_segments_routes_extensions(tmp_path):
    path = tmp_path / "trip.gpx"
    path.write_text(GPX11, encoding="utf-8")
    track = read_track(path)
    assert track.label == "Tuscany" and [len(s) for s in track.segments] == [2, 1, 1, 2]
    first = track.segments[0]
    assert first.times.tolist() == [utc(2024, 6, 1, 10), utc(2024, 6, 1, 10, 0, 10, 250_000)]
    assert first.lat.tolist() == [43.4674483, 43.468] and first.ele.tolist() == [250.5, 251.0]
    assert math.isnan(track.segments[1].ele[0])  # no elevation given
    assert track.segments[3].times[1] - track.segments[3].times[0] == 300  # the timed route
    assert "1 fix without a time left out" in track.notes
    assert "1 route without times left out" in track.notes
    assert (track.start, track.end) == (utc(2024, 6, 1, 10), utc(2024, 6, 3, 8, 5))


def test_gpx_10_and_naive_times(tmp_path):
    path = tmp_path / "old.gpx"
    path.write_text(
        '<?xml version="1.0"?><gpx version="1.0" creator="x" '
        'xmlns="http://www.topografix.com/GPX/1/0"><trk><trkseg>'
        '<trkpt lat="10" lon="20"><time>2024-06-01T10:00:00</time></trkpt>'
        '<trkpt lat="10.1" lon="20.1"><time>2024-06-01T10:01:00</time></trkpt>'
        "</trkseg></trk></gpx>"
    )
    track = read_track(path)
    assert track.label == "old" and track.segments[0].times[0] == utc(2024, 6, 1, 10)
    assert track.notes == ("2 times without a time zone read as UTC",)


KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document><name>Walk</name>
  <Placemark><name>track</name><gx:MultiTrack><gx:Track>
    <when>2024-06-01T10:00:00Z</when><when>2024-06-01T10:00:10Z</when>
    <gx:coord>11.8851267 43.4674483 250.5</gx:coord><gx:coord>11.886 43.468 251</gx:coord>
  </gx:Track></gx:MultiTrack></Placemark>
  <Placemark><TimeStamp><when>2024-06-01T13:00:00+02:00</when></TimeStamp>
    <Point><coordinates>11.9,43.5</coordinates></Point></Placemark>
  <Placemark><TimeStamp><when>2024-06</when></TimeStamp>
    <Point><coordinates>11.95,43.55</coordinates></Point></Placemark>
  <Placemark><name>drive</name>
    <TimeSpan><begin>2024-06-01T14:00:00Z</begin><end>2024-06-01T15:00:00Z</end></TimeSpan>
    <LineString><coordinates>11.0,43.0,0 11.0,43.1,0 11.0,43.4,0</coordinates></LineString>
  </Placemark>
  <Placemark><LineString><coordinates>1,2 3,4</coordinates></LineString></Placemark>
</Document></kml>
"""


def test_kml_tracks_placemarks_and_a_timespan_line(tmp_path):
    path = tmp_path / "walk.kml"
    path.write_text(KML, encoding="utf-8")
    track = read_track(path)
    assert track.label == "Walk"
    gx, line, points = track.segments
    assert gx.times.tolist() == [utc(2024, 6, 1, 10), utc(2024, 6, 1, 10, 0, 10)]
    assert gx.lon.tolist() == [11.8851267, 11.886] and gx.ele.tolist() == [250.5, 251.0]
    assert points.times.tolist() == [utc(2024, 6, 1, 11)] and points.lat.tolist() == [43.5]
    # times spread along the line by distance: 0.1 of 0.4 degrees of latitude is a quarter
    assert line.times[0] == utc(2024, 6, 1, 14) and line.times[-1] == utc(2024, 6, 1, 15)
    d1 = great_circle_distance_km(43.0, 11.0, 43.1, 11.0)
    d = d1 + great_circle_distance_km(43.1, 11.0, 43.4, 11.0)
    assert line.times[1] == pytest.approx(utc(2024, 6, 1, 14) + 3600 * d1 / d, abs=1e-6)
    assert any("'drive' has times only at its ends" in n for n in track.notes)
    assert "1 fix with a date but no time of day left out" in track.notes
    assert "1 LineString without times left out" in track.notes


def test_kmz_holds_the_same_track(tmp_path):
    kml = tmp_path / "walk.kml"
    kml.write_text(KML, encoding="utf-8")
    kmz = tmp_path / "walk.kmz"
    with zipfile.ZipFile(kmz, "w") as z:
        z.writestr("files/icon.png", b"\x89PNG")
        z.writestr("doc.kml", KML)
    a, b = read_track(kml), read_track(kmz)
    assert [s.times.tolist() for s in a.segments] == [s.times.tolist() for s in b.segments]
    assert b.path == kmz and b.label == "Walk"


def test_geojson_lines_with_coord_times_and_points(tmp_path):
    path = tmp_path / "ride.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {"name": "ride", "coordTimes": '
        '["2024-06-01T10:00:00Z", "2024-06-01T10:00:05Z"]}, "geometry": {"type": "LineString",'
        ' "coordinates": [[11.0, 43.0, 5], [11.1, 43.1, 6]]}},'
        '{"type": "Feature", "properties": {"times": [[1717236000000], [1717236060, 1717236070]]},'
        ' "geometry": {"type": "MultiLineString", "coordinates": [[[1, 2]], [[3, 4], [5, 6]]]}},'
        '{"type": "Feature", "properties": {"time": "2024-06-01T12:00:00Z"},'
        ' "geometry": {"type": "Point", "coordinates": [7, 8]}},'
        '{"type": "Feature", "properties": {}, "geometry": {"type": "LineString",'
        ' "coordinates": [[0, 0], [1, 1]]}}]}'
    )
    track = read_track(path)
    ride, multi_a, multi_b, points = track.segments
    assert ride.times.tolist() == [utc(2024, 6, 1, 10), utc(2024, 6, 1, 10, 0, 5)]
    assert ride.ele.tolist() == [5.0, 6.0] and ride.lat.tolist() == [43.0, 43.1]
    assert multi_a.times.tolist() == [utc(2024, 6, 1, 10)]  # milliseconds
    assert multi_b.lon.tolist() == [3.0, 5.0] and np.isnan(multi_b.ele).all()
    assert points.times.tolist() == [utc(2024, 6, 1, 12)]
    assert "1 line without times left out" in track.notes


@pytest.mark.parametrize(
    ("text", "times"),
    [
        (
            "time,lat,lon,ele\n2024-06-01T10:00:00Z,43.1,11.1,100\n\n1717236010,43.2,11.2,\n",
            [utc(2024, 6, 1, 10), utc(2024, 6, 1, 10, 0, 10)],
        ),
        (
            "Date;Time;Latitude;Longitude\n2024-06-01;10:00:00+02:00;43,1;11,1\n",
            [utc(2024, 6, 1, 8)],
        ),
        ("timestamp\tlat\tlng\n2024-06-01 10:00:00.5\t43.1\t11.1\n", [utc(2024, 6, 1, 10) + 0.5]),
    ],
)
def test_csv_forms(tmp_path, text, times):
    path = tmp_path / "log.csv"
    path.write_text(text)
    (segment,) = read_track(path).segments
    assert segment.times.tolist() == times and segment.lat[0] == 43.1 and segment.lon[0] == 11.1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.gpx", b"", "empty.gpx: is empty"),
        ("junk.gpx", bytes(range(256)) * 8, "holds binary data, not a track"),
        (
            "broken.gpx",
            b'<gpx version="1.1">\n<trk><trkseg>\n<trkpt lat="1" lon="2"></trk>',
            "broken.gpx, line 3: is not well-formed XML (mismatched tag",
        ),
        (
            "bad.csv",
            b"time,lat,lon\n2024-06-01T10:00:00Z,43,11\nsoon,43,11\n",
            "bad.csv, line 3: time 'soon' is not usable: an unreadable time",
        ),
        (
            "far.csv",
            b"time,lat,lon\n2024-06-01T10:00:00Z,95,11\n",
            "far.csv, line 2: lat '95' is out of range",
        ),
        ("cols.csv", b"when,y,x\n1,2,3\n", "cols.csv, line 1: has no time or lat or lon column"),
        (
            "mismatch.kml",
            b'<kml xmlns:gx="http://www.google.com/kml/ext/2.2"><Placemark>'
            b"<gx:Track><when>2024-06-01T10:00:00Z</when></gx:Track></Placemark></kml>",
            "gx:Track 'Placemark #1' has 1 <when> but 0 <gx:coord>",
        ),
        (
            "untimed.gpx",
            b'<gpx version="1.1"><trk><trkseg><trkpt lat="1" lon="2"/></trkseg></trk></gpx>',
            "untimed.gpx: no timed fixes: 1 tracks (1 points)",
        ),
        (
            "x.geojson",
            b'{"type": "Feature", "geometry": {"type": "LineString", '
            b'"coordinates": [[1, 2], [3, 4]]}, "properties": {"times": [1]}}',
            "features[0]: 2 coordinates but 1 times",
        ),
        ("notes.dat", b"Dear diary", "is not a track in a known format"),
        ("diary.txt", b"Dear diary", "diary.txt, line 1: has no time or lat or lon column"),
        ("html.gpx", b"<html><body>404</body></html>", "is XML with a <html> root, not GPX or KML"),
        ("zip.kmz", b"PK\x03\x04broken", "is a broken or unsupported zip (KMZ)"),
    ],
)
def test_bad_files_are_named_with_their_problem(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TrackError) as caught:
        read_track(path)
    assert message in str(caught.value) and str(caught.value).startswith(str(path))


def test_a_folder_or_a_missing_file(tmp_path):
    with pytest.raises(TrackError, match=r"missing\.gpx"):
        read_track(tmp_path / "missing.gpx")
    with pytest.raises(TrackError, match=re.escape(str(tmp_path))):
        read_track(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (  # found by fuzzing: a KML LineString with a TimeSpan and no coordinates
            "empty_line.kml",
            b"<kml><Placemark><TimeSpan><begin>2024-06-01T10:00:00Z</begin><end>"
            b"2024-06-01T11:00:00Z</end></TimeSpan><LineString><coordinates></coordinates>"
            b"</LineString></Placemark></kml>",
            "1 LineString without coordinates left out",
        ),
        (  # a MultiLineString without lines but with a flat list of times
            "no_lines.geojson",
            b'{"type": "Feature", "properties": {"times": [1, 2]}, '
            b'"geometry": {"type": "MultiLineString", "coordinates": []}}',
            "features[0]: 0 lines but 2 lists of times",
        ),
        (  # a field larger than the csv module's limit
            "huge.csv",
            b"time,lat,lon\n2024-06-01T10:00:00Z,43," + b"1" * 140_000 + b"\n",
            "huge.csv, line 2: is not readable as CSV (field larger than field limit",
        ),
    ],
)
def test_odd_shapes_found_by_fuzzing_are_messages(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    default = csv.field_size_limit(131_072)  # process-wide; a library may have raised it
    try:
        with pytest.raises(TrackError) as caught:
            read_track(path)
    finally:
        csv.field_size_limit(default)
    assert message in str(caught.value)


def test_long_values_are_cut_in_messages(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("time,lat,lon\n2024-06-01T10:00:00Z,43," + "9" * 5000 + "\n")
    with pytest.raises(TrackError) as caught:
        read_track(path)
    assert "line 2: lon '9999" in str(caught.value) and len(str(caught.value)) < 200 + len(
        str(path)
    )


def test_a_kmz_with_a_corrupt_directory_is_a_message(tmp_path):
    good = tmp_path / "good.kmz"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("doc.kml", KML)
    data = bytearray(good.read_bytes())
    end = data.rfind(b"PK\x05\x06")  # the end-of-directory record: point it before the start
    data[end + 16 : end + 20] = (0xFFFFFF00).to_bytes(4, "little")
    bad = tmp_path / "bad.kmz"
    bad.write_bytes(bytes(data))
    with pytest.raises(TrackError, match=r"bad\.kmz: is a broken or unsupported zip \(KMZ\)"):
        read_track(bad)


SEEDS = {
    "seed.gpx": GPX11.encode(),
    "seed.kml": KML.encode(),
    "seed.csv": b"date;time;lat;lon;ele\n2024-06-01;10:00:00Z;43,1;11,1;5\n"
    b"2024-06-01;10:00:05Z;43,2;11,2;\n",
    "seed.geojson": b'{"type": "Feature", "properties": {"coordTimes": ["2024-06-01T10:00:00Z",'
    b' "2024-06-01T10:00:05Z"]}, "geometry": {"type": "LineString", "coordinates": '
    b"[[11.0, 43.0, 5], [11.1, 43.1, 6]]}}",
}


def _kmz(kml: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("doc.kml", kml)
    return buffer.getvalue()


SEEDS["seed.kmz"] = _kmz(KML)


@settings(
    derandomize=True,
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.binary(max_size=4), st.integers(0, 8)), min_size=1, max_size=6
    ),
)
def test_damaged_track_files_give_a_track_or_a_message(tmp_path, name, edits):
    """Bytes replaced, dropped or inserted anywhere: a Track or a TrackError, nothing else."""
    data = bytearray(SEEDS[name])
    for where, insert, drop in edits:
        at = int(where * len(data))
        data[at : at + drop] = insert
    path = tmp_path / name
    path.write_bytes(bytes(data))
    try:
        track = read_track(path)
    except TrackError as exc:
        assert str(exc).startswith(str(path))
    else:
        assert track.segments and all(len(s) for s in track.segments)


def test_a_track_the_system_refuses_reads_as_permission_denied(tmp_path, monkeypatch):
    import builtins
    import errno

    path = tmp_path / "walk.gpx"
    path.write_bytes(b'<gpx version="1.1"></gpx>')
    real_open = builtins.open

    def refusing(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
    with pytest.raises(TrackError) as caught:
        read_track(path)
    assert str(caught.value) == (
        f"{path}: permission denied while reading it; check the file's and its folder's permissions"
    )
    assert isinstance(caught.value.__cause__, PermissionError)
