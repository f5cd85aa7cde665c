"""Offline map packs: opening an MBTiles and a PMTiles file and serving their tiles over HTTP.

    python benchmarks/tile_packs.py [--tiles 5000] [--requests 3000] [--repeats 3]

Both packs hold the same ``--tiles`` distinct 256 px palette PNGs (about 15 KB each, as map
tiles are: 100 encoded images, each tile made unique by a text chunk) over zooms 0 to 6. The
rows are opening the pack (and closing it); reading tiles in random order without HTTP, ours
(which keeps the parsed directories) beside the ``pmtiles`` package's own ``Reader.get`` on
300 tiles; and ``--requests`` tiles fetched from the ``TileServer`` on one kept-alive
connection and on six at once (what Chromium opens per host), each tile's bytes checked once.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from PIL import Image, ImageFilter
from pmtiles.reader import MmapSource, Reader
from tables import print_table, timed

from app.map.tile_packs import TilePack, open_pack
from app.map.tile_server import TileServer

ROOT = Path(__file__).resolve().parents[1]
# The pack writers are the tests' own (one definition for both).
sys.path.insert(0, str(ROOT / "tests"))
from tile_pack_files import write_mbtiles, write_pmtiles  # noqa: E402

CONNECTIONS = 6
UNCACHED_READS = 300


def png_tiles(count: int) -> dict[tuple[int, int, int], bytes]:
    """``count`` distinct PNG tiles, filling zooms 0, 1, 2, ... in order."""
    rng = random.Random(0)
    base = Image.effect_noise((256, 256), 60).filter(ImageFilter.GaussianBlur(3))
    palette = base.convert("RGB").quantize(16)
    images = []
    for i in range(100):
        image = palette.copy()
        x, y = rng.randrange(240), rng.randrange(240)
        image.paste(i % 16, (x, y, x + 16, y + 16))
        out = io.BytesIO()
        image.save(out, "PNG")
        images.append(out.getvalue())
    tiles = {}
    z = 0
    while len(tiles) < count:
        for x in range(1 << z):
            for y in range(1 << z):
                if len(tiles) == count:
                    return tiles
                text = b"tile\x00" + f"{z}/{x}/{y}".encode()
                chunk = struct.pack(">I", len(text)) + b"tEXt" + text
                chunk += struct.pack(">I", zlib.crc32(b"tEXt" + text))
                png = images[len(tiles) % len(images)]
                tiles[(z, x, y)] = png[:-12] + chunk + png[-12:]  # before IEND
        z += 1
    return tiles


def fetch_all(port: int, paths: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for path in paths:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
    connection.close()


def serve_rate(server: TileServer, pack: TilePack, keys: list, connections: int) -> float:
    """Tiles per second fetched over ``connections`` kept-alive connections at once."""
    template = server.add(pack).split(str(server.port), 1)[1]
    paths = [template.format(z=z, x=x, y=y) for z, x, y in keys]
    shares = [paths[i::connections] for i in range(connections)]
    threads = [threading.Thread(target=fetch_all, args=(server.port, s)) for s in shares]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(paths) / (time.perf_counter() - start)


def read_rate(read, keys: list) -> float:
    start = time.perf_counter()
    for z, x, y in keys:
        read(z, x, y)
    return len(keys) / (time.perf_counter() - start)


def check(server: TileServer, pack: TilePack, tiles: dict) -> None:
    template = server.add(pack).split(str(server.port), 1)[1]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for (z, x, y), data in tiles.items():
        connection.request("GET", template.format(z=z, x=x, y=y))
        response = connection.getresponse()
        assert response.read() == data and response.getheader("Content-Type") == "image/png"
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    tiles = png_tiles(args.tiles)
    rng = random.Random(1)
    keys = [rng.choice(list(tiles)) for _ in range(args.requests)]
    rows = []
    with tempfile.TemporaryDirectory() as folder, TileServer() as server:
        paths = {
            "MBTiles": write_mbtiles(Path(folder) / "b.mbtiles", tiles, {"format": "png"}),
            "PMTiles": write_pmtiles(Path(folder) / "b.pmtiles", tiles),
        }
        made = time.perf_counter() - start
        for kind, path in paths.items():
            size = f"{path.stat().st_size / 1e6:.0f} MB"
            opening = timed(lambda path=path: open_pack(path).close(), args.repeats)
            rows.append((kind, "open + close", f"{opening * 1000:.1f} ms", size))
            with open_pack(path) as pack:
                check(server, pack, tiles)
                rate = max(read_rate(pack.tile, keys) for _ in range(args.repeats))
                rows.append((kind, "tile() without HTTP", f"{rate:,.0f} tiles/s", ""))
                if kind == "PMTiles":
                    with path.open("rb") as file:
                        reader = Reader(MmapSource(file))
                        rate = read_rate(reader.get, keys[:UNCACHED_READS])  # slow: once
                    note = "parses the root directory each time"
                    rows.append((kind, "pmtiles Reader.get", f"{rate:,.0f} tiles/s", note))
                for n in (1, CONNECTIONS):
                    rate = max(serve_rate(server, pack, keys, n) for _ in range(args.repeats))
                    step = "HTTP, 1 connection" if n == 1 else f"HTTP, {n} connections at once"
                    rows.append((kind, step, f"{rate:,.0f} tiles/s", "kept alive"))
    print_table(
        f"Map packs: {args.tiles:,} PNG tiles ({made:.0f} s to make), {args.requests:,} requests"
        f" (best of {args.repeats}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})",
        ["pack", "step", "rate", "note"],
        rows,
    )


if __name__ == "__main__":
    main()
