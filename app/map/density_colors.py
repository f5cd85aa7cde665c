"""Colours for the SHDD density: one ramp for the map overlay and the density view.

Qt-free. :func:`density_rgba` turns a density grid (``shdd.density_grid``: per steradian,
row 0 = north, column 0 starts at -180 degrees) into RGBA, log-scaled by default and transparent
where the density is negligible, so the basemap stays readable under the overlay.
:func:`to_web_mercator` moves the rows of such an equirectangular image to Web Mercator, because
Leaflet's ``imageOverlay`` stretches an image linearly in projected (Mercator) space: a
latitude-linear image would draw a peak at 60 degrees north at 76 degrees north.
:func:`png_data_url` encodes the result for the page.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

# The ramp: positions in 0..1 and RGB anchors; dark purple to red to yellow, luminance rising
# at every step so more probable always reads as brighter.
RAMP_POSITIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
RAMP_COLORS = (
    (40, 11, 84),
    (120, 28, 109),
    (190, 55, 82),
    (240, 120, 30),
    (252, 230, 80),
)
ALPHA_POWER = 0.5  # opacity = level ** 0.5: fades in from the negligible floor, no hard edge
DEFAULT_DECADES = 3.0  # densities below max / 10**3 are negligible (transparent)
MAX_MERCATOR_LAT = math.degrees(math.atan(math.sinh(math.pi)))  # 85.0511..., Web Mercator's edge
OVERLAY_BOUNDS = ((-MAX_MERCATOR_LAT, -180.0), (MAX_MERCATOR_LAT, 180.0))  # (south, west), (n, e)


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
    top = float(np.max(grid, where=finite, initial=0.0)) if vmax is None else float(vmax)
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
