import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from locdiff_core.photo.export import (
    GPX_NS,
    Candidate,
    PhotoRecord,
    csv_text,
    geojson_dict,
    gpx_text,
    safe_cell,
    write_csv,
    write_geojson,
    write_gpx,
)


def records():
    return [
        PhotoRecord(
            Path("=HYPERLINK(evil).jpg"),
            43.4674,
            11.8851,
            43.5,
            11.9,
            radii_km=((0.5, 12.0), (0.9, 85.5)),
            candidates=(Candidate(43.4674, 11.8851, 0.6), Candidate(41.9, 12.5, 0.2)),
            exif_lat=43.4675,
            exif_lon=11.8852,
            place="Arezzo, Tuscany, Italy",
        ),
        PhotoRecord(Path("São Paulo ☀.jpg"), -23.55, -46.63, -23.6, -46.6, place="+1 @x"),
        PhotoRecord(  # not predicted: the user set it, overriding the file's own GPS
            Path("typed.jpg"),
            exif_lat=10.0,
            exif_lon=20.0,
            confirmed_lat=-33.8568,
            confirmed_lon=151.2153,
        ),
    ]


def test_the_location_is_confirmed_else_exif_else_predicted():
    first, second, third = records()
    assert first.location == (43.4675, 11.8852, "exif")
    assert second.location == (-23.55, -46.63, "predicted")
    assert third.location == (-33.8568, 151.2153, "confirmed")
    assert third.error_km is None and not third.predicted  # no guess to score
    with pytest.raises(ValueError, match=r"nothing\.jpg: nothing to export"):
        PhotoRecord(Path("nothing.jpg"), centre_lat=1.0, centre_lon=2.0)


def test_csv_has_a_header_numbers_and_no_formulas(tmp_path):
    path = tmp_path / "out.csv"
    write_csv(records(), path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header, first, second, third = rows
    assert header[:8] == [
        "file",
        "lat",
        "lon",
        "location_source",
        "best_lat",
        "best_lon",
        "centre_lat",
        "centre_lon",
    ]
    assert "radius_50pct_km" in header and "candidate2_score" in header and "error_km" in header
    assert first[0] == "'=HYPERLINK(evil).jpg"
    assert first[1:4] == ["43.4675", "11.8852", "exif"]
    assert second[0] == "São Paulo ☀.jpg" and second[header.index("place")] == "'+1 @x"
    assert second[1:5] == ["-23.55", "-46.63", "predicted", "-23.55"]  # numbers stay numbers
    error_km = float(first[header.index("error_km")])
    assert 0.005 < error_km < 0.02  # 1e-4 degrees at 43 N
    assert second[header.index("candidate1_lat")] == ""  # fewer candidates: blank cells
    by_name = dict(zip(header, third, strict=True))
    assert (by_name["lat"], by_name["lon"], by_name["location_source"]) == (
        "-33.8568",
        "151.2153",
        "confirmed",
    )
    assert by_name["confirmed_lat"] == "-33.8568" and by_name["exif_lon"] == "20.0"
    assert by_name["best_lat"] == by_name["centre_lon"] == by_name["error_km"] == ""


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starts_are_neutralised(text):
    assert safe_cell(text) == "'" + text


def test_geojson_geometry_is_lon_lat_and_properties_name_lat_and_lon(tmp_path):
    path = tmp_path / "out.geojson"
    write_geojson(records(), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc == geojson_dict(records())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 3
    first, second, third = (f["properties"] for f in doc["features"])
    assert doc["features"][0]["geometry"] == {"type": "Point", "coordinates": [11.8852, 43.4675]}
    assert first["location_source"] == "exif" and first["best"] == {"lat": 43.4674, "lon": 11.8851}
    assert first["exif"] == {"lat": 43.4675, "lon": 11.8852} and first["confirmed"] is None
    assert first["candidates"][1] == {"lat": 41.9, "lon": 12.5, "score": 0.2}
    assert second["error_km"] is None and second["location_source"] == "predicted"
    assert doc["features"][2]["geometry"]["coordinates"] == [151.2153, -33.8568]
    assert third["best"] is None and third["centre"] is None and third["candidates"] == []
    assert third["confirmed"] == {"lat": -33.8568, "lon": 151.2153}
    assert third["exif"] == {"lat": 10.0, "lon": 20.0}


def test_gpx_waypoints(tmp_path):
    path = tmp_path / "out.gpx"
    write_gpx(records(), path)
    root = ET.parse(path).getroot()
    wpts = root.findall(f"{{{GPX_NS}}}wpt")
    assert root.get("version") == "1.1" and len(wpts) == 3
    assert float(wpts[1].get("lat")) == pytest.approx(-23.55)
    assert float(wpts[2].get("lon")) == pytest.approx(151.2153)
    assert wpts[1].find(f"{{{GPX_NS}}}name").text == "São Paulo ☀.jpg"
    assert "Arezzo" in wpts[0].find(f"{{{GPX_NS}}}desc").text
    types = [w.find(f"{{{GPX_NS}}}type").text for w in wpts]
    assert types == ["exif", "predicted", "confirmed"]
    assert gpx_text([]).startswith("<?xml")
    assert wpts[0].find(f"{{{GPX_NS}}}time") is None  # no capture time known: none made up


def test_exports_round_away_float_noise_and_carry_time_and_altitude(tmp_path):
    noisy = PhotoRecord(
        Path("a.jpg"),
        -68.02734375000001,
        11.123456789,
        radii_km=((0.5, 12.345678912),),
        alt_m=256.54,
        taken_utc="2024-06-01T10:05:00Z",
    )
    row = dict(zip(*list(csv.reader(io.StringIO(csv_text([noisy])))), strict=True))
    assert (row["lat"], row["lon"]) == ("-68.0273438", "11.1234568")
    assert row["radius_50pct_km"] == "12.3457" and row["alt_m"] == "256.5"
    assert row["taken_utc"] == "2024-06-01T10:05:00Z"
    feature = geojson_dict([noisy])["features"][0]
    assert feature["geometry"]["coordinates"] == [11.1234568, -68.0273438, 256.5]
    gpx = gpx_text([noisy])
    assert "\n  <wpt " in gpx  # one element a line
    wpt = ET.fromstring(gpx).find(f"{{{GPX_NS}}}wpt")
    assert [child.tag.split("}")[1] for child in wpt] == ["ele", "time", "name", "type"]
    assert wpt.find(f"{{{GPX_NS}}}ele").text == "256.5"
    assert wpt.find(f"{{{GPX_NS}}}time").text == "2024-06-01T10:05:00Z"
    assert wpt.get("lat") == "-68.0273438"


def test_the_engine_of_the_prediction_is_exported(tmp_path):
    guessed = PhotoRecord(Path("g.jpg"), 48.86, 2.35, 48.9, 2.3, engine="hybrid")
    typed = PhotoRecord(Path("t.jpg"), confirmed_lat=1.0, confirmed_lon=2.0)
    write_csv([guessed, typed], tmp_path / "out.csv")
    header, first, second = list(csv.reader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert header[8] == "engine" and first[8] == "hybrid" and second[8] == ""
    features = geojson_dict([guessed, typed])["features"]
    assert [f["properties"]["engine"] for f in features] == ["hybrid", None]
