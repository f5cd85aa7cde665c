"""Tiny map packs written for the tests and the benchmark: MBTiles (SQLite, TMS rows) and PMTiles
(the ``pmtiles`` package's writer) of PNG tiles or of a hand-encoded MVT tile.

The MVT is protobuf as the Mapbox Vector Tile 2.1 spec has it: a ``Tile`` of one ``Layer``
(version 2, extent 4096) with one point feature tagged ``name=<value>``.
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from PIL import Image
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import write

Tiles = Mapping[tuple[int, int, int], bytes]  # XYZ (z, x, y), y from the north -> bytes


def png_tile(colour: tuple[int, int, int], size: int = 256) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "PNG")
    return out.getvalue()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)  # wire type 0: varint
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload  # 2: length-delimited


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 31)


def mvt_tile(layer: str = "water", value: str = "lake", x: int = 2048, y: int = 2048) -> bytes:
    """One layer with one point at ``(x, y)`` in tile units, tagged ``name=value``."""
    geometry = _varint(1 | 1 << 3) + _varint(_zigzag(x)) + _varint(_zigzag(y))  # MoveTo x1
    feature = _field(1, 1) + _field(2, _varint(0) + _varint(0)) + _field(3, 1) + _field(4, geometry)
    layer_bytes = (
        _field(15, 2)  # version
        + _field(1, layer.encode())
        + _field(2, feature)
        + _field(3, b"name")  # keys
        + _field(4, _field(1, value.encode()))  # values: string_value
        + _field(5, 4096)  # extent
    )
    return _field(3, layer_bytes)


def write_mbtiles(
    path: Path,
    tiles: Tiles,
    metadata: Mapping[str, str] | None = None,
    *,
    with_metadata_table: bool = True,
) -> Path:
    """An MBTiles file; each tile is stored at its TMS row ``2**z - 1 - y``."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, "
        "tile_data BLOB)"
    )
    db.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
    db.executemany(
        "INSERT INTO tiles VALUES (?, ?, ?, ?)",
        (((z, x, (1 << z) - 1 - y, data)) for (z, x, y), data in tiles.items()),
    )
    if with_metadata_table:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.executemany("INSERT INTO metadata VALUES (?, ?)", (metadata or {}).items())
    db.commit()
    db.close()
    return path


def write_pmtiles(
    path: Path,
    tiles: Tiles,
    *,
    tile_type: TileType = TileType.PNG,
    compression: Compression = Compression.NONE,
    bounds: tuple[float, float, float, float] = (45.0, 5.0, 48.0, 11.0),  # south west north east
    center: tuple[float, float, int] = (46.5, 8.0, 1),  # lat, lon, zoom
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """A PMTiles v3 file; tiles are written in tile-id order (a clustered file)."""
    south, west, north, east = bounds
    ordered = sorted((zxy_to_tileid(*zxy), data) for zxy, data in tiles.items())
    with write(path) as writer:
        for tile_id, data in ordered:
            writer.write_tile(tile_id, data)
        header = {
            "tile_type": tile_type,
            "tile_compression": compression,
            "min_lon_e7": int(west * 1e7),
            "min_lat_e7": int(south * 1e7),
            "max_lon_e7": int(east * 1e7),
            "max_lat_e7": int(north * 1e7),
            "center_zoom": center[2],
            "center_lon_e7": int(center[1] * 1e7),
            "center_lat_e7": int(center[0] * 1e7),
        }
        writer.finalize(header, dict(metadata or {}))
    return path


def vector_metadata(layers: Iterable[str]) -> dict[str, object]:
    return {"vector_layers": [{"id": name, "fields": {"name": "String"}} for name in layers]}


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def mbtiles_vector_metadata(layers: Iterable[str]) -> dict[str, str]:
    return {"format": "pbf", "json": json.dumps(vector_metadata(layers))}
