"""What an export writes from the session: each photo at its most trusted position, all of them
as fields, the ones without a location named; CSV, GeoJSON and GPX read back."""

import csv
import json

import pytest
from session_helpers import add, prediction

from app.model.exports import export_plan
from app.model.session import Session, distance_km
from locdiff_core.engines import Engine


def test_export_csv_geojson_gpx(photos, tmp_path):
    session = Session()
    a, b, c, d = add(session, [photos])
    session.set_exif(a.key, (43.46744, 11.88512))
    session.set_prediction(a.key, prediction())
    session.set_prediction(b.key, prediction(best=(-33.8568, 151.2153), engine=Engine.GEOCLIP))
    session.confirm(d.key, 48.8584, 2.2945)  # never predicted: the user typed it
    session.set_places([(43.46744, 11.88512, "Arezzo, Tuscany, Italy")])
    out = tmp_path / "out.csv"
    summary = export_plan(session, [a.key, b.key, c.key, d.key], "csv").write(out)
    assert summary.written == 3 and summary.skipped == ("c.png",)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["file"] for r in rows] == [str(a.path), str(b.path), str(d.path)]
    sources = [(r["location_source"], float(r["lat"]), float(r["lon"])) for r in rows]
    assert sources == [
        ("exif", 43.46744, 11.88512),  # the file's own position outranks the guess
        ("predicted", -33.8568, 151.2153),
        ("confirmed", 48.8584, 2.2945),
    ]
    assert float(rows[0]["best_lat"]) == 43.47 and float(rows[1]["best_lon"]) == 151.2153
    assert float(rows[0]["radius_50pct_km"]) == 12.5 and float(rows[0]["radius_90pct_km"]) == 8000
    assert float(rows[0]["candidate2_lat"]) == -33.45 and float(rows[0]["candidate1_score"]) == 0.75
    assert float(rows[0]["exif_lat"]) == 43.46744 and rows[1]["exif_lat"] == ""
    assert float(rows[2]["confirmed_lon"]) == 2.2945 and rows[2]["best_lat"] == ""
    expected_km = distance_km((43.47, 11.88), (43.46744, 11.88512))
    assert float(rows[0]["error_km"]) == round(expected_km, 4)  # written to 0.1 m
    assert rows[0]["place"] == "Arezzo, Tuscany, Italy"  # the name of the exported location
    assert [r["engine"] for r in rows] == ["locdiff", "geoclip", ""]  # which engine guessed
    geo = tmp_path / "out.geojson"
    export_plan(session, [a.key, d.key], "geojson").write(geo)
    first, second = json.loads(geo.read_text())["features"]
    assert first["geometry"]["coordinates"] == [11.88512, 43.46744]
    assert first["properties"]["best"] == {"lat": 43.47, "lon": 11.88}
    assert second["geometry"]["coordinates"] == [2.2945, 48.8584]
    assert second["properties"]["location_source"] == "confirmed"
    assert first["properties"]["engine"] == "locdiff" and second["properties"]["engine"] is None
    export_plan(session, [b.key], "gpx").write(tmp_path / "out.gpx")
    assert 'lat="-33.8568000"' in (tmp_path / "out.gpx").read_text()
    with pytest.raises(ValueError, match="predict them first"):
        export_plan(session, [c.key], "csv").write(tmp_path / "none.csv")
    with pytest.raises(ValueError, match="unknown export format"):
        export_plan(session, [a.key], "kml").write(tmp_path / "x.kml")
    assert not (tmp_path / "none.csv").exists() and not (tmp_path / "x.kml").exists()


def test_exports_carry_the_capture_time_in_utc_and_the_altitude(photos, tmp_path):
    import datetime as dt
    import xml.etree.ElementTree as ET

    from locdiff_core.photo.photo_time import CaptureTime

    session = Session()
    a, b, _c, _d = add(session, [photos])
    summer = dt.datetime(2024, 6, 1, 12, 5, 30)
    session.set_exif(a.key, (43.46744, 11.88512), alt=256.54, capture=CaptureTime(summer))
    session.set_exif(b.key, None, capture=CaptureTime(summer, dt.timedelta(hours=-3)))
    session.confirm(b.key, -23.55, -46.63, 760.0)
    out = tmp_path / "out.gpx"
    export_plan(session, [a.key, b.key], "gpx").write(out)
    ns = "{http://www.topografix.com/GPX/1/1}"
    first, second = ET.parse(out).getroot().findall(f"{ns}wpt")
    # Arezzo in June: Rome's summer time, UTC+2, found from where it was taken
    assert first.find(f"{ns}time").text == "2024-06-01T10:05:30Z"
    assert first.find(f"{ns}ele").text == "256.5"
    assert second.find(f"{ns}time").text == "2024-06-01T15:05:30Z"  # the file's own -03:00
    assert second.find(f"{ns}ele").text == "760.0"
