import json

import numpy as np
import pytest

from app.map import basemap


def test_basemap_loads_land_lakes_coasts_and_borders():
    bm = basemap.load_basemap()
    assert len(bm.land) > 500  # continents and islands
    assert len(bm.borders) > 300  # country borders
    assert len(bm.lakes) > 20
    for xy in bm.land + bm.lakes + bm.borders + bm.coasts:
        assert xy.ndim == 2 and xy.shape[1] == 2 and len(xy) >= 2
        assert np.all(np.abs(xy[:, 0]) <= 180) and np.all(np.abs(xy[:, 1]) <= 90)
    for ring in bm.land:
        assert np.array_equal(ring[0], ring[-1])  # closed rings


def _point_in_ring(lon: float, lat: float, ring: np.ndarray) -> bool:
    x, y = ring[:, 0], ring[:, 1]
    crosses = (y[:-1] > lat) != (y[1:] > lat)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x[:-1] + (lat - y[:-1]) * (x[1:] - x[:-1]) / (y[1:] - y[:-1])
    return bool(np.count_nonzero(crosses & (lon < x_at)) % 2)


@pytest.mark.parametrize(
    ("lat", "lon", "on_land"),
    [
        (5.0, 20.0, True),  # Central African Republic
        (48.0, 2.0, True),  # France
        (-25.0, 135.0, True),  # Australia
        (0.0, -140.0, False),  # the Pacific
        (30.0, -40.0, False),  # the Atlantic
    ],
)
def test_land_polygons_are_where_the_land_is(lat, lon, on_land):
    land = basemap.load_basemap().land
    assert any(_point_in_ring(lon, lat, ring) for ring in land) is on_land


def test_geojson_is_a_valid_feature_collection():
    data = json.loads(basemap.basemap_geojson_text())
    assert data["type"] == "FeatureCollection"
    features = data["features"]
    assert len(features) > 100
    layers = {f["properties"]["layer"] for f in features}
    assert layers == {"land", "lake", "coast", "border", "graticule", "river"}
    for f in features:
        assert f["type"] == "Feature"
        geometry = f["geometry"]
        if geometry["type"] == "Polygon":
            for ring in geometry["coordinates"]:
                assert len(ring) >= 4 and ring[0] == ring[-1]
                assert all(len(p) == 2 for p in ring)
        elif geometry["type"] == "MultiLineString":
            assert f["properties"]["layer"] == "river"
            assert len(geometry["coordinates"]) > 1000
            assert all(len(line) >= 2 for line in geometry["coordinates"])
        else:
            assert geometry["type"] == "LineString"
            assert len(geometry["coordinates"]) >= 2


def test_rivers_run_where_the_great_rivers_are():
    rivers = basemap.load_basemap().rivers
    assert len(rivers) > 1000

    points = np.concatenate(rivers)

    def near(lat, lon, km=60.0):
        dy = (points[:, 1] - lat) * 111.0
        dx = (points[:, 0] - lon) * 111.0 * np.cos(np.radians(lat))
        return float(np.min(np.hypot(dx, dy))) < km

    assert near(30.1, 31.2)  # the Nile at Cairo
    assert near(48.2, 16.4)  # the Danube at Vienna
    assert near(-3.1, -60.0)  # the Amazon at Manaus
    assert not near(23.4, 25.7)  # the Libyan desert


def test_cut_polygons_lose_their_seams_in_the_coastlines():
    # Antarctica and Chukotka are cut at the map's edge; no coastline runs along the cut.
    for line in basemap.load_basemap().coasts:
        x, y = line[:, 0], line[:, 1]
        along_meridian = (x[:-1] == x[1:]) & np.isin(x[:-1], (-180.0, 0.0, 180.0))
        along_pole = (y[:-1] <= -89.99) & (y[1:] <= -89.99)
        assert not np.any(along_meridian | along_pole)


def test_split_seams_keeps_the_rest_of_the_ring():
    ring = np.array([[0, -70], [10, -70], [10, -90], [0, -90], [0, -70]], dtype=float)
    lines = basemap.split_seams(ring)
    assert [line.tolist() for line in lines] == [[[0, -70], [10, -70], [10, -90]]]


def test_outline_lines_break_between_lines():
    x, y, connect = basemap.outline_lines()
    bm = basemap.load_basemap()
    assert x.shape == y.shape == connect.shape
    assert connect.dtype == bool
    assert np.count_nonzero(~connect) == len(bm.coasts) + len(bm.borders)  # one break per line


def test_bad_index_line_names_the_file(tmp_path):
    (tmp_path / "gshhsmeta_c.dat").write_text("1 2.0 4 0 1 0 32 7\nnot a line\n")
    (tmp_path / "gshhs_c.dat").write_bytes(np.zeros(8, "<f4").tobytes())
    with pytest.raises(ValueError, match=r"gshhsmeta_c\.dat, line 2"):
        basemap.read_records("gshhs", "c", folder=tmp_path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read the basemap file"):
        basemap.read_records("gshhs", "c", folder=tmp_path)
