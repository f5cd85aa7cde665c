"""Colours for the SHDD density: one ramp for the map overlay and the density view.

Qt-free. :func:`density_rgba` turns a density grid (``shdd.density_grid``: per steradian,
row 0 = north, column 0 starts at -180 degrees) into RGBA, log-scaled by default and transparent
where the density is negligible, so the basemap stays readable under the overlay; the colours
are matplotlib's perceptually uniform *inferno* (from pyqtgraph's data), and :func:`legend`
describes the scale for the map's legend.
:func:`to_web_mercator` moves the rows of such an equirectangular image to Web Mercator, because
Leaflet's ``imageOverlay`` stretches an image linearly in projected (Mercator) space: a
latitude-linear image would draw a peak at 60 degrees north at 76 degrees north.
:func:`png_data_url` encodes the result for the page.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import math
from pathlib import Path

import numpy as np

COLORMAP = "inferno"  # perceptually uniform, luminance rising (matplotlib's, CC0)
COLORMAP_RANGE = (0.12, 0.98)  # the part used: inferno's near-black start would read as a hole
RAMP_ANCHORS = 32
ALPHA_POWER = 0.8  # opacity = level ** 0.8: faint where little is likely, the basemap readable
DEFAULT_DECADES = 3.0  # densities below max / 10**3 are negligible (transparent)
STERADIANS_PER_100KM_SQUARE = (100.0 / 6371.0088) ** 2  # a 100 km x 100 km patch of the Earth
UNIFORM_DENSITY = 1.0 / (4.0 * math.pi)  # per steradian: a guess that knows nothing
CONFIDENT_DECADES = 2.0  # a peak 100x the uniform density is drawn at the full opacity
FLAT_STRENGTH = 0.25  # ... and one barely above it, a quarter as strongly
MAX_MERCATOR_LAT = math.degrees(math.atan(math.sinh(math.pi)))  # 85.0511..., Web Mercator's edge
OVERLAY_BOUNDS = ((-MAX_MERCATOR_LAT, -180.0), (MAX_MERCATOR_LAT, 180.0))  # (south, west), (n, e)


def _colormap_rgb(name: str) -> np.ndarray:
    """``(N, 3)`` floats in 0..1 of one of pyqtgraph's shipped colour maps, read from its data
    file (without importing pyqtgraph, which needs Qt)."""
    spec = importlib.util.find_spec("pyqtgraph")
    folder = Path(next(iter(spec.submodule_search_locations or ()), "")) if spec else None
    path = None if folder is None else folder / "colors" / "maps" / f"{name}.csv"
    try:
        rows = [
            [float(v) for v in line.split(",")]
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith(";")
        ]
    except (AttributeError, OSError, ValueError) as exc:
        raise ValueError(f"the {name} colour map of pyqtgraph cannot be read ({exc})") from None
    return np.asarray(rows, dtype=np.float64)


def _ramp() -> tuple[tuple[float, ...], tuple[tuple[int, int, int], ...]]:
    table = _colormap_rgb(COLORMAP)
    start, stop = COLORMAP_RANGE
    where = np.linspace(start, stop, RAMP_ANCHORS) * (len(table) - 1)
    rgb = np.stack([np.interp(where, np.arange(len(table)), table[:, c]) for c in range(3)], 1)
    positions = tuple(float(v) for v in np.linspace(0.0, 1.0, RAMP_ANCHORS))
    return positions, tuple(tuple(int(v) for v in row) for row in np.rint(255 * rgb))


RAMP_POSITIONS, RAMP_COLORS = _ramp()  # positions in 0..1 and their RGB


def ramp_rgb(t: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(..., 3)`` of ramp positions ``t`` in 0..1 (clipped)."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    anchors = np.asarray(RAMP_COLORS, dtype=np.float64)
    channels = [np.interp(t, RAMP_POSITIONS, anchors[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def density_levels(
    grid: np.ndarray, *, log_scale: bool = True, decades: float = DEFAULT_DECADES, vmax=None
) -> np.ndarray:
    """Ramp positions of a density grid: 1 at ``vmax`` (the grid's maximum by default), 0 at
    ``vmax / 10**decades``; NaN where the density is negligible (below that, or not finite)."""
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(
            f"a density grid must be a non-empty 2-D (height, width) array, got shape {grid.shape}"
        )
    if not decades > 0:
        raise ValueError(f"decades must be positive (the shown dynamic range), got {decades}")
    finite = np.isfinite(grid)
    top = peak_density(grid) if vmax is None else float(vmax)
    levels = np.full(grid.shape, np.nan)
    if not top > 0:
        return levels  # all zero: nothing to show
    floor = top * 10.0**-decades
    shown = finite & (grid >= floor)
    ratio = grid[shown] / top
    levels[shown] = 1.0 + np.log10(ratio) / decades if log_scale else ratio
    np.clip(levels, 0.0, 1.0, out=levels)
    return levels


def density_rgba(
    grid: np.ndarray, *, log_scale: bool = True, decades: float = DEFAULT_DECADES, vmax=None
) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA of a density grid, same orientation as the grid.

    Colour and opacity both rise with the density (opacity smoothly from zero, so the overlay
    has no hard edge); cells below ``vmax / 10**decades`` are fully transparent.
    ``log_scale=False`` maps the density linearly (peaks stand out more)."""
    levels = density_levels(grid, log_scale=log_scale, decades=decades, vmax=vmax)
    shown = ~np.isnan(levels)
    t = np.where(shown, levels, 0.0)
    rgba = np.zeros((*levels.shape, 4), dtype=np.uint8)
    rgba[..., :3] = ramp_rgb(t)
    alpha = 1.0 + np.rint(254.0 * t**ALPHA_POWER)  # at least 1 where shown at all
    rgba[..., 3] = np.where(shown, alpha, 0).astype(np.uint8)
    return rgba


def peak_density(grid: np.ndarray) -> float:
    """The largest finite value of ``grid`` (0 for an empty or all-NaN grid)."""
    grid = np.asarray(grid, dtype=np.float64)
    return float(np.max(grid, where=np.isfinite(grid), initial=0.0)) if grid.size else 0.0


def legend(grid: np.ndarray, *, log_scale: bool = True, decades: float = DEFAULT_DECADES) -> dict:
    """The overlay's colour scale for the map page: ``title``, ``stops`` (CSS colours, bottom
    to top), ``ticks`` (``[position 0..1, text]``: the fractions of the peak) and ``note``
    (the peak as a share of the probability in 100 km by 100 km). ``grid`` is the density per
    steradian that :func:`density_rgba` colours with the same ``log_scale`` and ``decades``."""
    peak = peak_density(grid)
    stops = [
        "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))
        for rgb in ramp_rgb(np.linspace(0.0, 1.0, 9))
    ]
    if log_scale:
        whole = math.floor(decades)
        ticks = [[1.0 - k / decades, "peak" if k == 0 else f"peak / {10**k:,}"]
                 for k in range(whole + 1)]  # fmt: skip
        title = "Probability density (log scale)"
    else:
        ticks = [[t, "peak" if t == 1 else f"{t:.0%} of peak"] for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
        title = "Probability density"
    share = peak * STERADIANS_PER_100KM_SQUARE
    note = ""
    if peak > 0:
        times = peak / UNIFORM_DENSITY
        note = (
            f"Peak: {_percent(share)} of the probability in 100 km by 100 km "
            f"({times:,.0f}\u00d7 a uniform guess)"
            if times >= 10
            else f"Peak: {_percent(share)} of the probability in 100 km by 100 km "
            f"(only {times:.1f}\u00d7 a uniform guess)"
        )
    return {"title": title, "stops": stops, "ticks": ticks, "note": note}


def strength(grid: np.ndarray) -> float:
    """How strongly to draw a density per steradian over the map, in FLAT_STRENGTH..1: fully
    once its peak is 10**CONFIDENT_DECADES times the uniform density, faintly when it is
    nearly flat (then every cell is "near the peak" and would paint the map one colour)."""
    peak = peak_density(grid)
    if not peak > UNIFORM_DENSITY:
        return FLAT_STRENGTH
    ratio = math.log10(peak / UNIFORM_DENSITY) / CONFIDENT_DECADES
    return float(min(1.0, max(FLAT_STRENGTH, ratio)))


def _percent(share: float) -> str:
    percent = 100.0 * min(share, 1.0)
    return f"{percent:.2g}%" if percent < 10 else f"{percent:.0f}%"


def mercator_y(lat_deg) -> np.ndarray:
    """Web Mercator's northing (radians of the unit sphere) of latitudes in degrees."""
    lat = np.radians(np.clip(np.asarray(lat_deg, dtype=np.float64), -89.9999, 89.9999))
    return np.log(np.tan(np.pi / 4 + lat / 2))


def mercator_lat(y) -> np.ndarray:
    """Latitude in degrees of Web Mercator northings (the inverse of :func:`mercator_y`)."""
    return np.degrees(np.arctan(np.sinh(np.asarray(y, dtype=np.float64))))


def to_web_mercator(image: np.ndarray, height: int | None = None) -> np.ndarray:
    """Resample the rows of an equirectangular world image (row 0 = +90 degrees, rows of equal
    latitude height) so that rows are of equal Mercator height between +-MAX_MERCATOR_LAT, the
    image Leaflet must stretch over :data:`OVERLAY_BOUNDS`. Columns are unchanged (longitude
    is linear in both). ``height`` defaults to the width (the Mercator world is square).
    Nearest-row sampling: each output row takes the source row under its centre."""
    image = np.asarray(image)
    if image.ndim < 2 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"an image needs (height, width, ...) axes, got shape {image.shape}")
    src_height = image.shape[0]
    height = image.shape[1] if height is None else int(height)
    if height < 1:
        raise ValueError(f"the Mercator image height must be positive, got {height}")
    y_max = float(mercator_y(MAX_MERCATOR_LAT))
    y_centres = y_max - (np.arange(height) + 0.5) * (2 * y_max / height)
    rows = np.floor((90.0 - mercator_lat(y_centres)) / 180.0 * src_height).astype(np.int64)
    return image[np.clip(rows, 0, src_height - 1)]


def png_data_url(rgba: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URL of an ``(H, W, 4)`` uint8 image."""
    from PIL import Image  # only here: the rest of the module needs only numpy

    rgba = np.ascontiguousarray(rgba)
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(
            f"an overlay image must be (height, width, 4) uint8 RGBA, got {rgba.dtype} "
            f"{rgba.shape}: use density_rgba(grid) to colour a density grid"
        )
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
