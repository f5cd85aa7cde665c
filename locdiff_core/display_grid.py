"""The equirectangular grid that densities are kept and shown on: ``height x width`` cells,
row 0 the northernmost, column 0 starting at -180 degrees, values at the cell centres (as
:func:`locdiff_core.shdd.density_grid` and :func:`locdiff_core.geoclip.gallery.gallery_density`
make them). Numpy only."""

from __future__ import annotations

import math

import numpy as np


def cell_centres(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lat, lon)`` in degrees of the cell centres: ``(height,)`` and ``(width,)``."""
    lat = 90.0 - (np.arange(height) + 0.5) * 180.0 / height
    lon = -180.0 + (np.arange(width) + 0.5) * 360.0 / width
    return lat, lon


def cell_areas(height: int, width: int) -> np.ndarray:
    """``(height, 1)`` solid angle (steradians) of one cell in each row."""
    edges = np.radians(90.0 - np.arange(height + 1) * 180.0 / height)
    return (np.sin(edges[:-1]) - np.sin(edges[1:]))[:, None] * (2 * math.pi / width)
