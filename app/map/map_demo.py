"""``python -m app.map.map_demo``: the map (:class:`app.map.map_view.MapView`) on its own, with
sample pins, printing how long the page, the basemap and the pins take."""

from __future__ import annotations

import math
import sys

import numpy as np

from app.map.map_view import MapView
from app.model.pins import CandidatePin, PhotoPin
from app.model.settings import OSM_TILES


def _demo(argv: list[str] | None = None) -> int:  # pragma: no cover - opens a window
    """``python -m app.map.map_view [--tile-url URL] [--pins N] [--quit]``: sample pins (or N random
    ones); prints the time to load the page, to draw the basemap after the start, and to push
    the pins (until the page has them); --quit exits then."""
    import argparse
    import time

    from PySide6.QtWidgets import QApplication

    from app.model.pins import PinKind

    parser = argparse.ArgumentParser(prog="python -m app.map.map_demo", description=_demo.__doc__)
    parser.add_argument("--tile-url", default=OSM_TILES, help='"" for the basemap only')
    parser.add_argument("--pins", type=int, default=0, help="show N random pins instead")
    parser.add_argument("--quit", action="store_true", help="exit once the pins are shown")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    start = time.perf_counter()
    view = MapView(tile_url=args.tile_url)
    view.resize(1000, 650)
    view.show()
    kinds = list(PinKind)
    rng = np.random.default_rng(0)
    pins = [
        PhotoPin(f"photo{i}", rng.uniform(-60, 70), rng.uniform(-180, 180), kinds[i % 3], f"{i}")
        for i in range(args.pins)
    ] or [
        PhotoPin("arezzo", 43.4633, 11.8797, PinKind.EXIF, "arezzo.jpg - Arezzo, Italy"),
        PhotoPin("sydney", -33.8568, 151.2153, PinKind.BEST, "opera.jpg - Sydney"),
        PhotoPin("nairobi", -1.2864, 36.8172, PinKind.CONFIRMED, "safari.jpg - Nairobi"),
    ]

    def on_ready() -> None:
        print(f"page ready in {1000 * (time.perf_counter() - start):.0f} ms")
        view.evaluate("locdiffState().basemapFeatures", on_basemap)

    def on_basemap(features: object) -> None:
        print(f"basemap ({features} features) drawn {1000 * (time.perf_counter() - start):.0f} ms")
        pushed = time.perf_counter()
        view.set_photos(pins)
        if not args.pins:
            view.set_candidates(
                [CandidatePin(-33.86, 151.21, 0.6, "Sydney"), CandidatePin(-37.8, 145, 0.4, "")],
                [(-33.86 + 0.3 * math.sin(i), 151.21 + 0.3 * math.cos(i)) for i in range(40)],
            )
            view.set_selection(["sydney"], fit=False)

        def shown(count: object) -> None:
            print(f"{count} pins pushed in {1000 * (time.perf_counter() - pushed):.0f} ms")
            if args.quit:
                app.quit()

        view.evaluate("locdiffState().photos.length", shown)

    view.ready.connect(on_ready)
    view.pinClicked.connect(lambda key: print("clicked", key))
    view.pinMoved.connect(lambda key, lat, lon: print("moved", key, lat, lon))
    view.locationRequested.connect(lambda lat, lon: print("set location", lat, lon))
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_demo())
