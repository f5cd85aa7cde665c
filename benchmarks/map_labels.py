"""How long the offline map's place names take: building the index once, and choosing the
labels of one view (what each pan or zoom costs the GUI thread) at several zooms.

    .venv/bin/python benchmarks/map_labels.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.map.place_labels import LabelIndex

VIEWS = [  # (what, south, west, north, east, zoom): an 800 x 500 px map
    ("world", -70.0, -180.0, 80.0, 180.0, 2),
    ("Europe", 34.0, -12.0, 62.0, 32.0, 5),
    ("Tuscany", 42.6, 10.2, 44.4, 12.6, 8),
    ("Arezzo", 43.40, 11.80, 43.52, 11.96, 12),
    ("across 180", -30.0, 160.0, 0.0, 200.0, 5),
]
REPEATS = 20


def main() -> None:
    start = time.perf_counter()
    index = LabelIndex.shipped()
    built = time.perf_counter() - start
    print(f"index of {len(index):,} places built in {built * 1000:.0f} ms")
    print(f"{'view':<12} {'zoom':>4} {'labels':>6} {'median ms':>10} {'max ms':>7}")
    for what, *view in VIEWS:
        times = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            labels = index.labels(*view)
            times.append(time.perf_counter() - t)
        print(
            f"{what:<12} {view[-1]:>4} {len(labels):>6} "
            f"{statistics.median(times) * 1000:>10.2f} {max(times) * 1000:>7.2f}"
        )


if __name__ == "__main__":
    main()
