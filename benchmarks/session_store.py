"""The session file: saving and restoring a window's work.

    python benchmarks/session_store.py [--photos 1000] [--repeats 3]

Every photo has a prediction with 100 samples and a 90 x 180 density (what the app keeps); the
rows are the first full save, a save after one photo changed (what a drag costs a second
later), loading the session back, and the save that follows a restore.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from tables import print_table, timed

from app.model.photo import PhotoPrediction
from app.model.session import Session, identify
from app.model.session_store import SessionStore
from app.workers.prediction import DENSITY_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    session = Session()
    session.add_found(identify(f"/bench/{i:05d}.jpg") for i in range(args.photos))
    for photo in session.photos:
        density = rng.random(DENSITY_SIZE, dtype=np.float32)
        samples = rng.uniform(-90, 90, (100, 2))
        pred = PhotoPrediction((1, 2), (1, 2), ((1, 2, 1.0),), 5.0, 50.0, samples, density)
        session.set_prediction(photo.key, pred)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.sqlite"
        start = time.perf_counter()
        store = SessionStore(path)
        store.save(session.photos)
        first = time.perf_counter() - start
        key = session.photos[args.photos // 2].key

        def one_change() -> None:
            session.confirm(key, float(rng.uniform(-80, 80)), 10.0)
            store.save(session.photos, [key])

        again = timed(one_change, args.repeats)
        store.close()  # the last connection: the write-ahead log goes into the file
        size = path.stat().st_size / 1e6
        load = timed(lambda: SessionStore(path).load(), args.repeats)
        store = SessionStore(path)
        restored = Session()
        stored = store.load()
        restored.add_found((r.path, r.key) for r in stored)
        for r in stored:
            restored.set_prediction(r.key, r.prediction)
        start = time.perf_counter()
        store.save(restored.photos)  # what the window does once it has restored them
        after_restore = time.perf_counter() - start
        store.close()
    rows = [
        (f"first save of {args.photos:,} photos", f"{first:.2f} s", f"file {size:.0f} MB"),
        ("save after one photo changed", f"{again * 1000:.1f} ms", "one transaction"),
        (f"load {args.photos:,} photos back", f"{load:.2f} s", "predictions with densities"),
        ("first save after the restore", f"{after_restore * 1000:.0f} ms", "arrays not rewritten"),
    ]
    print_table(
        f"Session file (best of {args.repeats}, load {os.getloadavg()[0]:.1f})",
        ["step", "time", "note"],
        rows,
    )


if __name__ == "__main__":
    main()
