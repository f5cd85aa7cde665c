"""PLACEHOLDER colour mapping of an SHDD density to an RGBA overlay (the map engineer's
``density_rgba`` replaces this file at the merge): log-scaled, transparent where negligible."""

from __future__ import annotations

import numpy as np


def density_rgba(grid: np.ndarray, decades: float = 3.0) -> np.ndarray:
    """``(H, W)`` density per steradian -> ``(H, W, 4)`` uint8: densities within ``decades``
    orders of magnitude of the peak go from transparent to opaque red, the rest stay clear."""
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 2:
        raise ValueError(f"density grid must be (H, W), got shape {grid.shape}")
    peak = float(np.nanmax(grid)) if grid.size else 0.0
    rgba = np.zeros((*grid.shape, 4), dtype=np.uint8)
    if not np.isfinite(peak) or peak <= 0:
        return rgba
    level = np.log10(np.clip(grid, peak * 10.0**-decades, None) / peak) / decades + 1.0
    rgba[..., 0] = 220
    rgba[..., 1] = (40 + 160 * (1 - level)).astype(np.uint8)
    rgba[..., 3] = np.where(level > 0, 40 + 215 * level, 0).astype(np.uint8)
    return rgba
