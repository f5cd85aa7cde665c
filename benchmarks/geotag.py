"""Geotagging by time: matching photos' UTC times to a GPS track (``match_times``), the
track-file readers on generated data, the offline place search, and the window's side: a
rematch of the session's photos (what each typed clock offset costs) and the time-aware guesses.

    python benchmarks/geotag.py [--photos 10000] [--fixes 100000] [--repeats 5]

The track is a drive with a fix every second and a few gaps; the photos are spread over it.
The target is 10,000 photos against 100,000 fixes in at most 1 s on the CPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from tables import print_table, timed

from locdiff_core.photo.track_match import MatchConfig, match_times
from locdiff_core.photo.tracks import Segment, Track

T0 = 1_717_236_000.0


def make_track(fixes: int, rng: np.random.Generator) -> Track:
    t = T0 + np.arange(fixes, dtype=np.float64)
    for start in rng.integers(0, fixes, 20):  # twenty 10-minute holes
        t[start:] += 600.0
    lat = 43.0 + np.cumsum(rng.normal(0, 1e-4, fixes))
    lon = 11.0 + np.cumsum(rng.normal(0, 1e-4, fixes))
    ele = 200.0 + np.cumsum(rng.normal(0, 0.1, fixes))
    return Track(Path("bench.gpx"), (Segment.from_fixes(t, lat, lon, ele),))


def gpx_text(track: Track, fixes: int) -> str:
    seg = track.segments[0]
    rows = []
    for i in range(fixes):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seg.times[i]))
        rows.append(
            f'<trkpt lat="{seg.lat[i]:.7f}" lon="{seg.lon[i]:.7f}"><ele>{seg.ele[i]:.1f}</ele>'
            f"<time>{stamp}</time></trkpt>"
        )
    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="bench" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        + "".join(rows)
        + "</trkseg></trk></gpx>"
    )


def session_photos(count: int, track: Track, rng: np.random.Generator, predicted: int = 0):
    """``count`` camera photos (Rome's time) over ``track``; the first ``predicted`` have a
    model density on the app's grid, and every tenth has EXIF GPS (a phone's)."""
    import datetime as dt

    from app.model.photo import Photo, PhotoPrediction
    from app.workers.prediction import DENSITY_SIZE
    from locdiff_core.photo.photo_time import CaptureTime

    flat = np.full(DENSITY_SIZE, 1.0 / (4 * np.pi))
    photos = []
    for i, t in enumerate(rng.uniform(track.start - 600, track.end + 600, count)):
        local = dt.datetime.fromtimestamp(t, dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=2)
        exif = (43.0 + 1e-3 * (i % 50), 11.0) if i % 10 == 0 and i >= predicted else None
        photo = Photo(Path(f"/b/{i}.jpg"), f"/b/{i}.jpg", exif=exif, exif_read=True)
        photo.capture = CaptureTime(local)
        if i < predicted:
            photo.prediction = PhotoPrediction(
                (43, 11), (43, 11), (), 1.0, 2.0, np.zeros((0, 2)), flat
            )
        photos.append(photo)
    return photos


def window_rows(track: Track, rng: np.random.Generator, repeats: int) -> list[tuple]:
    """The window's rematch (propose_places over the session) and the time-aware guesses."""
    try:
        from app.model.geotagging import GeotagOptions
        from app.workers.geotagging import fusion_jobs, propose_places, time_guesses
    except ImportError:  # the app's extras are not installed
        return []
    from locdiff_core.photo.photo_time import TimeSettings
    from locdiff_core.time_fusion import TimePrior

    rows = []
    options = GeotagOptions(zone="Europe/Rome")
    for count in (1_000, 10_000):
        photos = session_photos(count, track, rng)
        places, _notes, _summary = propose_places(photos, [track], options)
        took = timed(lambda p=photos: propose_places(p, [track], options), repeats)
        rows.append(
            (
                f"window: rematch {count:,} photos (each offset typed)",
                f"{took * 1000:.0f} ms",
                f"{len(places):,} proposed; photos with GPS as a track too",
            )
        )
    photos = session_photos(1_000, track, rng, predicted=100)
    jobs, _ = fusion_jobs(photos, TimeSettings("Europe/Rome"), TimePrior().window_s)
    took = timed(lambda: time_guesses(jobs, TimePrior()), max(1, repeats // 2))
    rows.append(
        (
            f"window: time-aware guesses of {len(jobs)} photos (90 x 180 grid)",
            f"{took * 1000:.0f} ms",
            f"{took * 1000 / max(len(jobs), 1):.1f} ms a photo, on a pool thread",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--fixes", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    track = make_track(args.fixes, rng)
    times = rng.uniform(track.start - 600, track.end + 600, args.photos)
    config = MatchConfig()
    matches = match_times(times, [track], config)
    placed = sum(m.placed for m in matches)
    seconds = timed(lambda: match_times(times, [track], config), args.repeats)
    rows = [
        (
            f"match {args.photos:,} photos against {args.fixes:,} fixes",
            f"{seconds * 1000:.0f} ms",
            f"{placed:,} placed, {args.photos - placed:,} in gaps or outside",
        )
    ]
    try:
        from locdiff_core.photo.track_readers import read_track
    except ImportError:
        read_track = None
    if read_track is not None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "bench.gpx"
            path.write_text(gpx_text(track, args.fixes), encoding="utf-8")
            size = path.stat().st_size / 1e6
            read = timed(lambda: read_track(path), max(1, args.repeats // 2))
            rows.append(
                (f"read a GPX of {args.fixes:,} fixes ({size:.1f} MB)", f"{read:.2f} s", "gpxpy")
            )
    from locdiff_core.photo.geocode import shared_geocoder
    from locdiff_core.photo.place_search import PlaceIndex

    geocoder = shared_geocoder()
    start = time.perf_counter()
    index = PlaceIndex(geocoder)
    built = time.perf_counter() - start
    rows.append((f"place search: index {len(geocoder):,} names", f"{built:.2f} s", "once"))
    queries = ["Arezzo", "paris, texas", "koln", "new york", "Piazza Grande", "san"]
    worst = max(timed(lambda q=q: index.search(q), args.repeats) for q in queries)
    rows.append(
        (f"place search: {len(queries)} queries", f"worst {worst * 1000:.1f} ms", "best of each")
    )
    rows += window_rows(track, rng, args.repeats)
    load = os.getloadavg()[0]
    print_table(
        f"Geotagging by time (best of {args.repeats}, load {load:.1f})",
        ["step", "time", "result"],
        rows,
    )


if __name__ == "__main__":
    main()
