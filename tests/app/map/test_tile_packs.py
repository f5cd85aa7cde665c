import gzip
import sqlite3
import threading
import zlib

import pytest
from pmtiles.tile import Compression, TileType
from tile_pack_files import (
    gzipped,
    mbtiles_vector_metadata,
    mvt_tile,
    png_tile,
    vector_metadata,
    write_mbtiles,
    write_pmtiles,
)

from app.map.tile_packs import (
    MAX_LAT,
    WORLD,
    PackError,
    PackKind,
    open_pack,
    sniff_format,
    tile_bounds,
)

RED, GREEN, BLUE, GREY = (
    png_tile((255, 0, 0)),
    png_tile((0, 255, 0)),
    png_tile((0, 0, 255)),
    png_tile((9, 9, 9)),
)
RASTER_TILES = {(0, 0, 0): GREY, (1, 0, 0): RED, (1, 1, 0): GREEN, (1, 0, 1): BLUE}
METADATA = {
    "name": "Alps",
    "format": "png",
    "bounds": "5.0,45.0,11.0,48.0",  # west, south, east, north
    "center": "8.0,46.5,1",
    "minzoom": "0",
    "maxzoom": "1",
    "attribution": "© OpenStreetMap contributors",
}


@pytest.fixture
def raster_mbtiles(tmp_path):
    return write_mbtiles(tmp_path / "alps.mbtiles", RASTER_TILES, METADATA)


def test_mbtiles_metadata(raster_mbtiles):
    with open_pack(raster_mbtiles) as pack:
        assert pack.path == raster_mbtiles
        assert pack.name == "Alps"
        assert pack.kind == "raster" and pack.kind is PackKind.RASTER
        assert (pack.extension, pack.content_type) == ("png", "image/png")
        assert (pack.min_zoom, pack.max_zoom) == (0, 1)
        assert pack.bounds == (45.0, 5.0, 48.0, 11.0)
        assert (pack.center, pack.center_zoom) == ((46.5, 8.0), 1)
        assert pack.attribution == "© OpenStreetMap contributors"
        assert pack.vector_layers == ()
        assert pack.metadata["format"] == "png"


def test_mbtiles_rows_are_flipped_from_tms(raster_mbtiles):
    # the north-west tile (XYZ y=0) is stored at TMS row 1 of zoom 1
    row = sqlite3.connect(raster_mbtiles).execute(
        "SELECT tile_data FROM tiles WHERE zoom_level=1 AND tile_column=0 AND tile_row=1"
    )
    assert row.fetchone()[0] == RED
    with open_pack(raster_mbtiles) as pack:
        assert pack.tile(1, 0, 0) == RED
        assert pack.tile(1, 0, 1) == BLUE
        assert pack.tile(1, 1, 0) == GREEN
        assert pack.tile(0, 0, 0) == GREY


def test_tiles_outside_the_pack_are_none(raster_mbtiles):
    with open_pack(raster_mbtiles) as pack:
        assert pack.tile(1, 1, 1) is None  # in range, not stored
        assert pack.tile(2, 0, 0) is None  # deeper than the pack
        for z, x, y in ((1, 2, 0), (1, 0, -1), (-1, 0, 0), (40, 0, 0)):
            assert pack.tile(z, x, y) is None


def test_mbtiles_at_a_path_of_uri_characters(tmp_path):
    folder = tmp_path / "my maps #1 ?x=1&mode=rw %20"
    folder.mkdir()
    path = write_mbtiles(folder / "a%2F b.mbtiles", RASTER_TILES, METADATA)
    with open_pack(path) as pack:
        assert pack.tile(1, 0, 0) == RED


def test_mbtiles_without_metadata_derives_zooms_bounds_and_format(tmp_path):
    tiles = {(3, 4, 2): RED, (3, 5, 3): GREEN, (2, 2, 1): BLUE}
    path = write_mbtiles(tmp_path / "bare.mbtiles", tiles, with_metadata_table=False)
    with open_pack(path) as pack:
        assert pack.name == "bare"
        assert pack.extension == "png"  # sniffed from a tile
        assert (pack.min_zoom, pack.max_zoom) == (2, 3)
        south, west, _, _ = tile_bounds(3, 4, 3)
        _, _, north, east = tile_bounds(3, 5, 2)
        assert pack.bounds == pytest.approx((south, west, north, east))
        assert pack.bounds == pytest.approx((0.0, 0.0, 66.51326, 90.0), abs=1e-4)
        assert pack.center == pytest.approx(((south + north) / 2, 45.0))
        assert pack.center_zoom == 2
        assert pack.attribution == ""
        assert pack.tile(3, 4, 2) == RED


def test_mbtiles_with_garbage_metadata_falls_back(tmp_path):
    meta = {"bounds": "a,b,c,d", "minzoom": "x", "maxzoom": "", "center": "999,0,1", "json": "{"}
    path = write_mbtiles(tmp_path / "odd.mbtiles", {(1, 1, 1): RED}, meta)
    with open_pack(path) as pack:
        assert (pack.min_zoom, pack.max_zoom) == (1, 1)
        assert pack.bounds == pytest.approx((-MAX_LAT, 0.0, 0.0, 180.0))
        assert pack.center == pytest.approx((-MAX_LAT / 2, 90.0))


def test_mbtiles_bounds_are_cut_to_web_mercator(tmp_path):
    meta = {"bounds": "-180,-90,180,90"}
    path = write_mbtiles(tmp_path / "world.mbtiles", {(0, 0, 0): GREY}, meta)
    with open_pack(path) as pack:
        assert pack.bounds == WORLD


def test_vector_mbtiles_gunzips_mvt(tmp_path):
    mvt = mvt_tile("water")
    meta = {"name": "city", **mbtiles_vector_metadata(["water", "roads"])}
    tiles = {(0, 0, 0): gzipped(mvt), (1, 0, 0): zlib.compress(mvt), (1, 1, 0): mvt}
    path = write_mbtiles(tmp_path / "city.mbtiles", tiles, meta)
    with open_pack(path) as pack:
        assert pack.kind == "vector"
        assert (pack.extension, pack.content_type) == ("mvt", "application/vnd.mapbox-vector-tile")
        assert pack.vector_layers == ("water", "roads")
        assert pack.tile(0, 0, 0) == mvt
        assert pack.tile(1, 0, 0) == mvt  # zlib, as old writers stored it
        assert pack.tile(1, 1, 0) == mvt  # stored plain


def test_a_corrupt_gzip_tile_is_a_pack_error(tmp_path):
    path = write_mbtiles(tmp_path / "bad.mbtiles", {(0, 0, 0): b"\x1f\x8b\x08garbage"})
    with open_pack(path) as pack, pytest.raises(PackError, match=r"tile 0/0/0 is corrupt"):
        pack.tile(0, 0, 0)


def test_raster_pmtiles(tmp_path):
    meta = {"name": "Alps PM", "attribution": "© OSM"}
    path = write_pmtiles(tmp_path / "alps.pmtiles", RASTER_TILES, metadata=meta)
    with open_pack(path) as pack:
        assert (pack.name, pack.attribution) == ("Alps PM", "© OSM")
        assert pack.kind == "raster" and pack.extension == "png"
        assert (pack.min_zoom, pack.max_zoom) == (0, 1)
        assert pack.bounds == pytest.approx((45.0, 5.0, 48.0, 11.0))
        assert pack.center == pytest.approx((46.5, 8.0))
        assert pack.center_zoom == 1
        for (z, x, y), data in RASTER_TILES.items():
            assert pack.tile(z, x, y) == data
        assert pack.tile(1, 1, 1) is None
        assert pack.tile(2, 0, 0) is None


def test_vector_pmtiles_gunzips_mvt(tmp_path):
    mvt = mvt_tile("earth", "land")
    path = write_pmtiles(
        tmp_path / "v.pmtiles",
        {(0, 0, 0): gzipped(mvt), (2, 1, 1): gzipped(mvt_tile("water"))},
        tile_type=TileType.MVT,
        compression=Compression.GZIP,
        metadata=vector_metadata(["earth", "water"]),
    )
    with open_pack(path) as pack:
        assert pack.name == "v"  # no name in the metadata: the file's
        assert pack.kind == "vector" and pack.extension == "mvt"
        assert pack.vector_layers == ("earth", "water")
        assert pack.tile(0, 0, 0) == mvt
        assert pack.tile(2, 1, 1) == mvt_tile("water")
        assert pack.tile(1, 0, 0) is None


def test_pmtiles_of_one_run_of_equal_tiles(tmp_path):
    # the writer stores one entry for all 21 tiles and its header says zooms 0-0
    tiles = {(z, x, y): BLUE for z in range(3) for x in range(1 << z) for y in range(1 << z)}
    path = write_pmtiles(tmp_path / "sea.pmtiles", tiles)
    with open_pack(path) as pack:
        assert len(pack._root) == 1
        assert (pack.min_zoom, pack.max_zoom) == (0, 2)
        assert pack.tile(2, 3, 3) == pack.tile(1, 0, 1) == BLUE
        assert pack.tile(3, 0, 0) is None


def test_pmtiles_with_leaf_directories(tmp_path):
    # 60,000 tiles of different lengths: the root directory no longer fits in 16 KiB
    tiles = {(8, i % 256, i // 256): bytes([1]) * (1 + i % 997) for i in range(60_000)}
    path = write_pmtiles(tmp_path / "big.pmtiles", tiles)
    with open_pack(path) as pack:
        assert any(entry.run_length == 0 for entry in pack._root)  # leaves were written
        for i in (0, 1, 12_345, 59_999):
            assert pack.tile(8, i % 256, i // 256) == bytes([1]) * (1 + i % 997)
        assert pack.tile(8, 255, 255) is None


def test_tiles_read_from_many_threads(raster_mbtiles, tmp_path):
    pm = write_pmtiles(tmp_path / "a.pmtiles", RASTER_TILES)
    with open_pack(raster_mbtiles) as mb, open_pack(pm) as pmt:
        wrong = []

        def read() -> None:
            for _ in range(200):
                for pack in (mb, pmt):
                    if pack.tile(1, 0, 1) != BLUE or pack.tile(0, 0, 0) != GREY:
                        wrong.append(pack)

        threads = [threading.Thread(target=read) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wrong == []


def test_a_closed_pack_says_so(raster_mbtiles):
    pack = open_pack(raster_mbtiles)
    pack.close()
    pack.close()
    with pytest.raises(PackError, match="closed"):
        pack.tile(0, 0, 0)


def test_mbtiles_is_opened_read_only(raster_mbtiles):
    with (
        open_pack(raster_mbtiles) as pack,
        pytest.raises(sqlite3.OperationalError, match="readonly"),
    ):
        pack._db.execute("DELETE FROM tiles")


def test_sniff_format():
    assert sniff_format(RED).extension == "png"
    assert sniff_format(b"\xff\xd8\xff\xe0").extension == "jpg"
    assert sniff_format(b"RIFF\0\0\0\0WEBPVP8 ").extension == "webp"
    assert sniff_format(gzip.compress(b"x")).kind == "vector"
    assert sniff_format(b"hello") is None


# --- files that are not packs ---------------------------------------------------------


def test_a_text_file_named_mbtiles(tmp_path):
    path = tmp_path / "notes.mbtiles"
    path.write_text("just some notes\n")
    with pytest.raises(PackError, match=r"notes\.mbtiles: neither an MBTiles \(SQLite\) nor"):
        open_pack(path)


def test_an_empty_file(tmp_path):
    path = tmp_path / "empty.pmtiles"
    path.touch()
    with pytest.raises(PackError, match=r"empty\.pmtiles: the file is empty"):
        open_pack(path)


def test_a_missing_file_and_a_folder(tmp_path):
    with pytest.raises(PackError, match=r"gone\.mbtiles: cannot read the map pack"):
        open_pack(tmp_path / "gone.mbtiles")
    with pytest.raises(PackError, match="cannot read the map pack"):
        open_pack(tmp_path)


def test_sqlite_without_tiles(tmp_path):
    path = tmp_path / "session.mbtiles"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (path TEXT)")
    db.commit()
    db.close()
    with pytest.raises(
        PackError, match=r"session\.mbtiles: an SQLite file without a 'tiles' table"
    ):
        open_pack(path)


def test_mbtiles_without_a_single_tile(tmp_path):
    path = write_mbtiles(tmp_path / "none.mbtiles", {}, METADATA)
    with pytest.raises(PackError, match=r"none\.mbtiles: the MBTiles file has no tiles"):
        open_pack(path)


def test_mbtiles_of_an_unsupported_format(tmp_path):
    path = write_mbtiles(tmp_path / "t.mbtiles", {(0, 0, 0): RED}, {"format": "tiff"})
    with pytest.raises(PackError, match=r"t\.mbtiles: tile format 'tiff' is not supported"):
        open_pack(path)


def test_mbtiles_of_unknown_tiles_and_no_format(tmp_path):
    path = write_mbtiles(tmp_path / "u.mbtiles", {(0, 0, 0): b"hello"})
    with pytest.raises(PackError, match="no 'format' in its metadata"):
        open_pack(path)


def test_a_truncated_pmtiles(tmp_path):
    whole = write_pmtiles(tmp_path / "whole.pmtiles", RASTER_TILES).read_bytes()
    for size in (60, 200, len(whole) - 10):
        path = tmp_path / f"cut{size}.pmtiles"
        path.write_bytes(whole[:size])
        with pytest.raises(PackError, match=rf"cut{size}\.pmtiles: the PMTiles file is truncated"):
            open_pack(path)


def test_pmtiles_of_version_2(tmp_path):
    path = tmp_path / "old.pmtiles"
    path.write_bytes(b"PM\x02\x00" + bytes(100))
    with pytest.raises(PackError, match="PMTiles version 2 is not supported; convert it"):
        open_pack(path)


@pytest.mark.parametrize(
    ("tile_type", "compression", "message"),
    [
        (TileType.MLT, Compression.NONE, "tile type MLT is not supported"),
        (TileType.UNKNOWN, Compression.NONE, "tile type UNKNOWN is not supported"),
        (TileType.MVT, Compression.BROTLI, "tiles compressed with brotli are not supported"),
    ],
)
def test_pmtiles_the_map_cannot_show(tmp_path, tile_type, compression, message):
    path = write_pmtiles(
        tmp_path / "x.pmtiles", {(0, 0, 0): b"data"}, tile_type=tile_type, compression=compression
    )
    with pytest.raises(PackError, match=message):
        open_pack(path)


def test_pmtiles_with_a_damaged_directory(tmp_path):
    data = bytearray(write_pmtiles(tmp_path / "ok.pmtiles", RASTER_TILES).read_bytes())
    data[127:140] = bytes(13)  # the root directory's gzip header
    path = tmp_path / "damaged.pmtiles"
    path.write_bytes(bytes(data))
    with pytest.raises(PackError, match=r"damaged\.pmtiles: a damaged PMTiles file"):
        open_pack(path)


def test_pack_error_is_a_value_error():
    assert issubclass(PackError, ValueError)
