"""Offline map packs: a region's tiles in one ``.mbtiles`` or ``.pmtiles`` file, read tile by
tile for the local tile server (``app.map.tile_server``).

MBTiles 1.3 is an SQLite file: a ``metadata`` table of ``name``/``value`` text rows (``name``,
``format``, ``bounds`` as ``west,south,east,north``, ``center`` as ``lon,lat,zoom``,
``minzoom``, ``maxzoom``, ``attribution``, and ``json`` with the ``vector_layers`` of a vector
pack) and a ``tiles`` table whose ``tile_row`` counts from the south (TMS): the XYZ tile
``z/x/y`` is stored at row ``2**z - 1 - y``. Vector tiles are usually gzip'd MVT.

PMTiles v3 is one file of a 127-byte header (tile type, tile compression, zooms, bounds and
centre in 1e-7 degrees), gzip'd directories of run-length tile entries on a Hilbert curve, a
JSON metadata block and the tile data; the official ``pmtiles`` package parses the header,
the metadata and the directories, and the directories met are cached here.

Either way a :class:`TilePack` hands out tiles decompressed (the page's ``fetch`` gets plain
MVT or image bytes) and is safe to read from many threads. Metadata a pack lacks is derived from
its tiles (zooms, bounds) or defaulted (name from the file name). Qt-free.
"""

from __future__ import annotations

import gzip
import json
import math
import mmap
import os
import sqlite3
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pmtiles.reader import Reader
from pmtiles.tile import (
    Compression,
    Entry,
    MagicNumberNotFound,
    SpecVersionUnsupported,
    TileType,
    deserialize_directory,
    find_tile,
    tileid_to_zxy,
    zxy_to_tileid,
)

MAX_LAT = 85.0511287798  # Web Mercator's edge: atan(sinh(pi)) in degrees
WORLD = (-MAX_LAT, -180.0, MAX_LAT, 180.0)  # (south, west, north, east) degrees
MAX_ZOOM = 30
SQLITE_MAGIC = b"SQLite format 3\x00"
PMTILES_MAGIC = b"PMTiles"
PMTILES_HEADER_BYTES = 127
LEAF_CACHE_SIZE = 64  # leaf directories kept parsed (each a few thousand entries)


class PackError(ValueError):
    """A map pack that cannot be used; the message names the file and what is wrong."""


class PackKind(StrEnum):
    RASTER = "raster"  # images Leaflet shows as they are
    VECTOR = "vector"  # MVT that protomaps-leaflet draws in the page


@dataclass(frozen=True)
class TileFormat:
    """What a pack's tiles are: the URL's extension and the HTTP ``Content-Type``."""

    extension: str
    content_type: str
    kind: PackKind


FORMATS = {
    "png": TileFormat("png", "image/png", PackKind.RASTER),
    "jpg": TileFormat("jpg", "image/jpeg", PackKind.RASTER),
    "webp": TileFormat("webp", "image/webp", PackKind.RASTER),
    "avif": TileFormat("avif", "image/avif", PackKind.RASTER),
    "mvt": TileFormat("mvt", "application/vnd.mapbox-vector-tile", PackKind.VECTOR),
}
_MBTILES_FORMATS = {"jpeg": "jpg", "pbf": "mvt"}  # MBTiles' names that differ from ours
_PMTILES_FORMATS = {
    TileType.PNG: "png",
    TileType.JPEG: "jpg",
    TileType.WEBP: "webp",
    TileType.AVIF: "avif",
    TileType.MVT: "mvt",
}


def sniff_format(data: bytes) -> TileFormat | None:
    """The format of one tile by its first bytes; gzip'd or zlib'd data is taken for MVT."""
    if data.startswith(b"\x89PNG"):
        return FORMATS["png"]
    if data.startswith(b"\xff\xd8\xff"):
        return FORMATS["jpg"]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return FORMATS["webp"]
    if data[4:12] == b"ftypavif":
        return FORMATS["avif"]
    if data[:2] == b"\x1f\x8b" or data[:1] in (b"\x78", b"\x1a"):  # gzip, zlib, MVT's layer
        return FORMATS["mvt"]
    return None


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """``(south, west, north, east)`` degrees of the XYZ tile (y counted from the north)."""
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return lat(y + 1), x / n * 360 - 180, lat(y), (x + 1) / n * 360 - 180


def in_range(z: int, x: int, y: int) -> bool:
    """Whether ``z/x/y`` names a tile at all (zoom 0-30, x and y within ``2**z``)."""
    return 0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)


class TilePack:
    """One open pack. ``bounds`` are ``(south, west, north, east)`` and ``center`` is
    ``(lat, lon)``, both in degrees; ``vector_layers`` are the MVT layer names of a vector pack
    (empty for raster); ``metadata`` is what the file says, unparsed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.stem
        self.format = FORMATS["png"]
        self.min_zoom = 0
        self.max_zoom = 0
        self.bounds = WORLD
        self.center = (0.0, 0.0)
        self.center_zoom = 0
        self.attribution = ""
        self.vector_layers: tuple[str, ...] = ()
        self.metadata: dict[str, object] = {}
        self._lock = threading.Lock()  # one reader of the file at a time; close waits for it
        self._closed = False

    @property
    def kind(self) -> PackKind:
        return self.format.kind

    @property
    def extension(self) -> str:
        return self.format.extension

    @property
    def content_type(self) -> str:
        return self.format.content_type

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The XYZ tile's bytes, decompressed; None where the pack has no such tile."""
        if not in_range(z, x, y):  # min_zoom and max_zoom are advice: a stored tile is served
            return None
        with self._lock:
            if self._closed:
                raise PackError(f"{self.path}: the pack is closed")
            data = self._read(z, x, y)
        return None if data is None else self._decompress(data, (z, x, y))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    def __enter__(self) -> TilePack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.kind} z{self.min_zoom}-{self.max_zoom}>"

    def _read(self, z: int, x: int, y: int) -> bytes | None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _decompress(self, data: bytes, zxy: tuple[int, int, int]) -> bytes:
        try:
            if data[:2] == b"\x1f\x8b":
                return gzip.decompress(data)
            if data[:1] == b"\x78" and self.kind is PackKind.VECTOR:
                return zlib.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            where = "/".join(map(str, zxy))
            raise PackError(f"{self.path}: tile {where} is corrupt ({error})") from None
        return data

    def _set_layers(self, layers: object) -> None:
        if isinstance(layers, list):
            self.vector_layers = tuple(
                str(layer["id"]) for layer in layers if isinstance(layer, dict) and "id" in layer
            )

    def _set_center(self, center: tuple[float, float, float] | None) -> None:
        south, west, north, east = self.bounds
        if center is not None and -90 <= center[0] <= 90 and -180 <= center[1] <= 180:
            self.center = (center[0], center[1])
            self.center_zoom = int(min(max(center[2], self.min_zoom), self.max_zoom))
        else:
            self.center = ((south + north) / 2, (west + east) / 2)
            self.center_zoom = self.min_zoom


def open_pack(path: str | os.PathLike) -> TilePack:
    """The MBTiles or PMTiles pack at ``path``, told apart by the file's first bytes.

    Raises :class:`PackError` for a file that is missing, unreadable, empty, of another kind,
    truncated, without tiles, or of a tile type the map cannot show."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError as error:
        raise PackError(f"{path}: cannot read the map pack ({error.strerror or error})") from None
    if not head:
        raise PackError(f"{path}: the file is empty, not a map pack")
    if head.startswith(SQLITE_MAGIC):
        return MBTilesPack(path)
    if head.startswith(PMTILES_MAGIC):
        return PMTilesPack(path)
    if head[:2] == b"PM" and head[2:3] in (b"\x01", b"\x02"):
        raise PackError(
            f"{path}: PMTiles version {head[2]} is not supported; convert it to version 3 with "
            "`pmtiles convert`"
        )
    raise PackError(f"{path}: neither an MBTiles (SQLite) nor a PMTiles file")


def _floats(text: object, count: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        return None
    ok = len(values) == count and all(math.isfinite(v) for v in values)
    return values if ok else None


def _zoom(text: object) -> int | None:
    try:
        zoom = int(float(str(text)))
    except ValueError:
        return None
    return zoom if 0 <= zoom <= MAX_ZOOM else None


def _valid_bounds(south: float, west: float, north: float, east: float) -> bool:
    return -90 <= south < north <= 90 and -180 <= west < east <= 180


def _clamped(
    south: float, west: float, north: float, east: float
) -> tuple[float, float, float, float]:
    """Bounds cut to the latitudes Web Mercator shows."""
    return (max(south, -MAX_LAT), west, min(north, MAX_LAT), east)


class MBTilesPack(TilePack):
    """An MBTiles file, opened read-only; one connection shared under the pack's lock."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        uri = path.resolve().as_uri() + "?mode=ro"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as error:
            raise PackError(f"{path}: cannot open the SQLite file ({error})") from None
        try:
            self._load()
        except sqlite3.Error as error:
            self._db.close()
            raise PackError(f"{path}: not a readable MBTiles file ({error})") from None
        except PackError:
            self._db.close()
            raise

    def _load(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if "tiles" not in tables:
            raise PackError(f"{self.path}: an SQLite file without a 'tiles' table, not MBTiles")
        first = self._db.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
        if first is None:
            raise PackError(f"{self.path}: the MBTiles file has no tiles")
        meta: dict[str, object] = {}
        if "metadata" in tables:
            meta = {str(k): v for k, v in self._db.execute("SELECT name, value FROM metadata")}
        self.metadata = meta
        self.format = self._format(meta.get("format"), bytes(first[0] or b""))
        self._tms = str(meta.get("scheme", "tms")).lower() != "xyz"  # "xyz": a writer's quirk
        self.name = str(meta.get("name") or self.path.stem)
        self.attribution = str(meta.get("attribution") or "")
        low, high = _zoom(meta.get("minzoom")), _zoom(meta.get("maxzoom"))
        if low is None or high is None or low > high:
            low, high = self._db.execute(
                "SELECT MIN(zoom_level), MAX(zoom_level) FROM tiles"
            ).fetchone()
        self.min_zoom, self.max_zoom = int(low), int(high)
        wsen = _floats(meta.get("bounds"), 4)  # MBTiles' order: west, south, east, north
        if wsen is not None and _valid_bounds(wsen[1], wsen[0], wsen[3], wsen[2]):
            self.bounds = _clamped(wsen[1], wsen[0], wsen[3], wsen[2])
        else:
            self.bounds = self._tile_extent()
        center = _floats(meta.get("center"), 3)
        self._set_center(None if center is None else (center[1], center[0], center[2]))
        try:
            extra = json.loads(str(meta.get("json") or "{}"))
        except json.JSONDecodeError:
            extra = {}
        if isinstance(extra, dict):
            self._set_layers(extra.get("vector_layers"))

    def _format(self, declared: object, first: bytes) -> TileFormat:
        if declared:
            name = str(declared).strip().lower()
            name = _MBTILES_FORMATS.get(name, name)
            if name not in FORMATS:
                raise PackError(
                    f"{self.path}: tile format {declared!r} is not supported "
                    f"(the map shows {', '.join(FORMATS)})"
                )
            return FORMATS[name]
        sniffed = sniff_format(first)
        if sniffed is None:
            raise PackError(f"{self.path}: no 'format' in its metadata and tiles of unknown type")
        return sniffed

    def _tile_extent(self) -> tuple[float, float, float, float]:
        """The bounds of the tiles stored at the deepest zoom (the finest outline)."""
        z = self.max_zoom
        x0, x1, r0, r1 = self._db.execute(
            "SELECT MIN(tile_column), MAX(tile_column), MIN(tile_row), MAX(tile_row) "
            "FROM tiles WHERE zoom_level = ?",
            (z,),
        ).fetchone()
        top, bottom = ((1 << z) - 1 - r1, (1 << z) - 1 - r0) if self._tms else (r0, r1)
        if not (in_range(z, x0, top) and in_range(z, x1, bottom)):
            return WORLD
        south, west, _, _ = tile_bounds(z, x0, bottom)
        _, _, north, east = tile_bounds(z, x1, top)
        return (south, west, north, east)

    def _read(self, z: int, x: int, y: int) -> bytes | None:
        row = (1 << z) - 1 - y if self._tms else y
        found = self._db.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, row),
        ).fetchone()
        return None if found is None or found[0] is None else bytes(found[0])

    def _release(self) -> None:
        self._db.close()


class PMTilesPack(TilePack):
    """A PMTiles v3 file, memory-mapped; the root directory is parsed once, leaves on demand."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            with path.open("rb") as file:
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as error:
            raise PackError(f"{path}: cannot read the PMTiles file ({error})") from None
        self._leaves: OrderedDict[tuple[int, int], list[Entry]] = OrderedDict()
        try:
            self._load()
        except PackError:
            self._map.close()
            raise
        except (OSError, EOFError, zlib.error, ValueError, KeyError, IndexError) as error:
            self._map.close()
            raise PackError(f"{path}: a damaged PMTiles file ({error})") from None

    def _bytes(self, offset: int, length: int) -> bytes:
        return self._map[offset : offset + length]

    def _load(self) -> None:
        size = len(self._map)
        if size < PMTILES_HEADER_BYTES:
            raise PackError(f"{self.path}: the PMTiles file is truncated ({size} bytes)")
        reader = Reader(self._bytes)
        try:
            header = reader.header()
        except SpecVersionUnsupported:
            raise PackError(f"{self.path}: a PMTiles version other than 3") from None
        except MagicNumberNotFound:
            raise PackError(f"{self.path}: not a PMTiles file") from None
        ends = (
            header["root_offset"] + header["root_length"],
            header["metadata_offset"] + header["metadata_length"],
            header["leaf_directory_offset"] + header["leaf_directory_length"],
            header["tile_data_offset"] + header["tile_data_length"],
        )
        if max(ends) > size:
            raise PackError(
                f"{self.path}: the PMTiles file is truncated ({size:,} bytes of {max(ends):,})"
            )
        self._header = header
        if header["internal_compression"] != Compression.GZIP:  # the pmtiles package's limit
            raise PackError(
                f"{self.path}: directories compressed with "
                f"{header['internal_compression'].name.lower()} are not supported (only gzip)"
            )
        self.format = self._format(header["tile_type"])
        compression = header["tile_compression"]
        if compression not in (Compression.NONE, Compression.GZIP, Compression.UNKNOWN):
            raise PackError(
                f"{self.path}: tiles compressed with {compression.name.lower()} are not supported "
                "(only gzip'd or uncompressed PMTiles)"
            )
        self._root = deserialize_directory(
            self._bytes(header["root_offset"], header["root_length"])
        )
        if not self._root:
            raise PackError(f"{self.path}: the PMTiles file has no tiles")
        meta = reader.metadata() if header["metadata_length"] else {}
        self.metadata = meta if isinstance(meta, dict) else {}
        self.name = str(self.metadata.get("name") or self.path.stem)
        self.attribution = str(self.metadata.get("attribution") or "")
        self._set_layers(self.metadata.get("vector_layers"))
        # The pmtiles writer takes max_zoom from the last entry's first tile, not from the last
        # tile of its run (one run of equal tiles over zooms 0-2 says "0-0"): the directory's
        # last tile corrects it.
        self.min_zoom = min(header["min_zoom"], header["max_zoom"])
        self.max_zoom = max(header["min_zoom"], header["max_zoom"], self._last_zoom())
        bounds = tuple(
            header[key] / 1e7 for key in ("min_lat_e7", "min_lon_e7", "max_lat_e7", "max_lon_e7")
        )
        if _valid_bounds(*bounds):
            self.bounds = _clamped(*bounds)
        lat, lon = header["center_lat_e7"] / 1e7, header["center_lon_e7"] / 1e7
        self._set_center((lat, lon, header["center_zoom"]) if (lat, lon) != (0, 0) else None)

    def _format(self, tile_type: TileType) -> TileFormat:
        name = _PMTILES_FORMATS.get(tile_type)
        if name is None:
            raise PackError(
                f"{self.path}: tile type {tile_type.name} is not supported "
                f"(the map shows {', '.join(FORMATS)})"
            )
        return FORMATS[name]

    def _last_zoom(self) -> int:
        """The zoom of the last tile the directories address (the deepest: ids grow with z)."""
        entries, leaves = self._root, self._header["leaf_directory_offset"]
        for _depth in range(4):
            last = entries[-1]
            if last.run_length > 0:
                return tileid_to_zxy(last.tile_id + last.run_length - 1)[0]
            entries = self._leaf(leaves + last.offset, last.length)
            if not entries:
                break
        return 0

    def _leaf(self, offset: int, length: int) -> list[Entry]:
        key = (offset, length)
        entries = self._leaves.get(key)
        if entries is None:
            entries = deserialize_directory(self._bytes(offset, length))
            self._leaves[key] = entries
            if len(self._leaves) > LEAF_CACHE_SIZE:
                self._leaves.popitem(last=False)
        else:
            self._leaves.move_to_end(key)
        return entries

    def _read(self, z: int, x: int, y: int) -> bytes | None:
        header = self._header
        tile_id = zxy_to_tileid(z, x, y)
        entries = self._root
        for _depth in range(4):  # the spec's deepest directory tree
            entry = find_tile(entries, tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                return self._bytes(header["tile_data_offset"] + entry.offset, entry.length)
            try:
                entries = self._leaf(header["leaf_directory_offset"] + entry.offset, entry.length)
            except (OSError, EOFError, zlib.error) as error:
                raise PackError(f"{self.path}: a damaged leaf directory ({error})") from None
        return None

    def _release(self) -> None:
        self._leaves.clear()
        self._map.close()
