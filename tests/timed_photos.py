"""Photos and tracks with known times and places, and model densities with known modes, for the
tests of geotagging by time and of time fused with the model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from PIL import Image

from locdiff_core.display_grid import cell_areas, cell_centres
from locdiff_core.earth import great_circle_distance_km
from locdiff_core.photo.track_match import slerp
from locdiff_core.photo.tracks import Segment, Track


def photo_with(path: Path, **tags) -> Path:
    """A small JPEG whose EXIF sub-IFD holds ``tags`` (names of EXIF time tags)."""
    codes = {
        "DateTimeOriginal": 0x9003,
        "DateTimeDigitized": 0x9004,
        "OffsetTimeOriginal": 0x9011,
        "SubSecTimeOriginal": 0x9291,
    }
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    sub = exif.get_ifd(0x8769)
    for name, value in tags.items():
        sub[codes[name]] = value
    Image.new("RGB", (16, 16), (90, 120, 200)).save(path, exif=exif.tobytes())
    return path


def camera_photo(path: Path, local: dt.datetime, offset: str | None = None) -> Path:
    """A JPEG taken at the wall-clock time ``local`` (sub-seconds kept), with
    ``OffsetTimeOriginal`` when ``offset`` is given."""
    tags = {
        "DateTimeOriginal": local.strftime("%Y:%m:%d %H:%M:%S"),
        "SubSecTimeOriginal": f"{local.microsecond:06d}",
    }
    if offset is not None:
        tags["OffsetTimeOriginal"] = offset
    return photo_with(path, **tags)


def straight_track(
    start: tuple[float, float],
    end: tuple[float, float],
    t0: float,
    duration: float,
    every_s: float = 10.0,
    name: str = "drive.gpx",
) -> Track:
    """Constant speed along the great circle from ``start`` to ``end``, a fix every
    ``every_s`` seconds from UTC ``t0``, elevation 250 m climbing 1 cm a second."""
    t = t0 + np.arange(0.0, duration + every_s / 2, every_s)
    lat, lon = along(start, end, t0, duration, t)
    return Track(Path(name), (Segment.from_fixes(t, lat, lon, 250.0 + 0.01 * (t - t0)),))


def along(start, end, t0: float, duration: float, t) -> tuple[np.ndarray, np.ndarray]:
    """Where :func:`straight_track` is at the UTC times ``t`` (the truth)."""
    f = np.clip((np.asarray(t, dtype=np.float64) - t0) / duration, 0.0, 1.0)
    n = len(f)
    a_lat, a_lon = np.full(n, start[0]), np.full(n, start[1])
    return slerp(a_lat, a_lon, np.full(n, end[0]), np.full(n, end[1]), f)


def write_gpx(path: Path, track: Track, name: str = "Arezzo to Florence") -> Path:
    """``track``'s first segment as a GPX 1.1 file (elevation and times to the second)."""
    seg = track.segments[0]
    points = "".join(
        f'<trkpt lat="{a:.8f}" lon="{b:.8f}"><ele>{e:.3f}</ele>'
        f"<time>{dt.datetime.fromtimestamp(t, dt.UTC):%Y-%m-%dT%H:%M:%SZ}</time></trkpt>"
        for t, a, b, e in zip(seg.times, seg.lat, seg.lon, seg.ele, strict=True)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="test" '
        f'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>{name}</name>'
        f"<trkseg>{points}</trkseg></trk></gpx>\n",
        encoding="utf-8",
    )
    return path


def bumps(*centres_weights, size=(90, 180), sigma_km=300.0) -> np.ndarray:
    """A density (per steradian) of Gaussian bumps on the display grid."""
    lat, lon = cell_centres(*size)
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    f = np.zeros(size)
    for (clat, clon), w in centres_weights:
        d = np.vectorize(great_circle_distance_km)(glat, glon, clat, clon)
        f += w * np.exp(-0.5 * (d / sigma_km) ** 2)
    return f / (f * cell_areas(*size)).sum()
