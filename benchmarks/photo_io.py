"""Photo I/O speed: GPS reads and writes, thumbnails, reverse geocoding.

    python benchmarks/photo_io.py [--samples PATH] [--repeats N]

Prints one table: GPS reads per second over the EXIF sample set, thumbnails per second (256 px,
JPEG draft mode), GPS writes per second for each writer backend (copies of the writable samples
in a temporary folder, no backups; exiftool only when installed), and reverse-geocoding lookups
per second (one at a time and batched). Each figure is the best of ``--repeats`` runs, because
the machine may be shared.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tables import print_table  # a sibling script

from locdiff_core.photo.exiftool import exiftool_path
from locdiff_core.photo.gps import read_gps_batch
from locdiff_core.photo.reading import find_photos, thumbnails
from locdiff_core.photo.writing import BackupMode, WriteConfig, WriterBackend, write_gps

DEFAULT_SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata"


def best_rate(fn: Callable[[], int], repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` runs (``fn`` returns its item count)."""
    best = math.inf
    count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def writable_copies(paths: list[Path], folder: Path) -> list[Path]:
    copies = []
    for i, src in enumerate(paths):
        dst = folder / f"{i:03d}_{src.name}"
        shutil.copyfile(src, dst)
        dst.chmod(dst.stat().st_mode | stat.S_IWUSR)
        copies.append(dst)
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    photos = find_photos([args.samples])
    if not photos:
        raise SystemExit(f"no photos under {args.samples}")
    rows: list[tuple[str, int, float]] = []
    rows.append(("GPS reads", len(photos), best_rate(lambda: len(read_gps_batch(photos)), 5)))
    rows.append(("thumbnails 256 px", len(photos), best_rate(lambda: len(thumbnails(photos)), 3)))

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("LOCDIFF_STATE_DIR", str(Path(tmp) / "state"))
        copies = writable_copies(photos, Path(tmp))
        backends = [WriterBackend.BUILTIN]
        if exiftool_path() is not None:
            backends.append(WriterBackend.EXIFTOOL)
        for backend in backends:
            config = WriteConfig(backend=backend, backup=BackupMode.NONE)
            write_gps(copies[:1], 1.0, 1.0, config=config)  # start exiftool outside the timing

            def run(config=config) -> int:
                results = write_gps(copies, 43.4674, 11.8851, 260.0, config)
                return sum(r.ok for r in results)

            rows.append((f"GPS writes ({backend.value})", len(copies), best_rate(run, 3)))

    from locdiff_core.photo.geocode import shared_geocoder

    start = time.perf_counter()
    geocoder = shared_geocoder()
    load_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 100_000)))
    lon = rng.uniform(-180, 180, 100_000)
    single = list(zip(lat[:20_000].tolist(), lon[:20_000].tolist(), strict=True))
    rows.append(
        (
            "reverse geocode, one at a time",
            len(single),
            best_rate(lambda: len([geocoder.lookup(a, b) for a, b in single]), args.repeats),
        )
    )
    rows.append(
        (
            "reverse geocode, batched",
            len(lat),
            best_rate(lambda: len(geocoder.lookup_many(lat, lon)), args.repeats),
        )
    )

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"{len(photos)} sample files; geocoder: {len(geocoder):,} places, loaded in {load_s:.2f} s"
    )
    print()
    print_table(
        None,
        ("operation", "items", "per second"),
        ((name, count, f"{rate:,.0f}") for name, count, rate in rows),
    )


if __name__ == "__main__":
    main()
