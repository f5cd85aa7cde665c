import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from locdiff_core.photo.export import (
    GPX_NS,
    Candidate,
    PredictionRecord,
    geojson_dict,
    gpx_text,
    safe_cell,
    write_csv,
    write_geojson,
    write_gpx,
)


def records():
    return [
        PredictionRecord(
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
        PredictionRecord(Path("São Paulo ☀.jpg"), -23.55, -46.63, -23.6, -46.6, place="+1 @x"),
    ]


def test_csv_has_a_header_numbers_and_no_formulas(tmp_path):
    path = tmp_path / "out.csv"
    write_csv(records(), path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header, first, second = rows
    assert header[:5] == ["file", "best_lat", "best_lon", "centre_lat", "centre_lon"]
    assert "radius_50pct_km" in header and "candidate2_score" in header and "error_km" in header
    assert first[0] == "'=HYPERLINK(evil).jpg"
    assert second[0] == "São Paulo ☀.jpg" and second[-1] == "'+1 @x"
    assert second[1] == "-23.55"  # numbers stay numbers, even negative ones
    error_km = float(first[header.index("error_km")])
    assert 0.005 < error_km < 0.02  # 1e-4 degrees at 43 N
    assert second[header.index("candidate1_lat")] == ""  # fewer candidates: blank cells


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starts_are_neutralised(text):
    assert safe_cell(text) == "'" + text


def test_geojson_uses_lon_lat_order(tmp_path):
    path = tmp_path / "out.geojson"
    write_geojson(records(), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc == geojson_dict(records())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    feature = doc["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [11.8851, 43.4674]}
    assert feature["properties"]["exif"] == [11.8852, 43.4675]
    assert doc["features"][1]["properties"]["error_km"] is None


def test_gpx_waypoints(tmp_path):
    path = tmp_path / "out.gpx"
    write_gpx(records(), path)
    root = ET.parse(path).getroot()
    wpts = root.findall(f"{{{GPX_NS}}}wpt")
    assert root.get("version") == "1.1" and len(wpts) == 2
    assert float(wpts[1].get("lat")) == pytest.approx(-23.55)
    assert wpts[1].find(f"{{{GPX_NS}}}name").text == "São Paulo ☀.jpg"
    assert "Arezzo" in wpts[0].find(f"{{{GPX_NS}}}desc").text
    assert gpx_text([]).startswith("<?xml")
