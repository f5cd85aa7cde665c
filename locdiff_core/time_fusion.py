"""Time fused with the model: photos with a known position taken shortly before or after bound
where a photo can be, and that bound multiplies the model's density.

A neighbour known to be at ``x`` a time ``dt`` from the photo puts it within
``reach = slack + speed * |dt|`` of ``x`` (``speed``: the fastest the photographer travels).
The prior is the product of one soft cap per neighbour, ``sigmoid((reach - d) / edge)`` with an
edge of a tenth of the reach (at least ``slack``), so a photo between two known ones is bounded
from both sides. Multiplied into the model's density on the display grid
(:mod:`locdiff_core.display_grid`), the most probable cell picks the mode; the best guess is
then refined on a fine grid around that cell (the density interpolated, the prior exact), so a
prior far narrower than a cell still lands on the right point. Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from locdiff_core.display_grid import cell_areas, cell_centres
from locdiff_core.earth import EARTH_RADIUS_KM


@dataclass(frozen=True)
class Neighbour:
    """A photo with a known position, ``dt_s`` seconds after (negative: before) the photo."""

    lat: float
    lon: float
    dt_s: float
    label: str = ""


@dataclass(frozen=True)
class TimePrior:
    """``max_speed_kmh``: the fastest the photographer travels between photos; ``slack_km``:
    what is allowed at ``dt = 0`` (GPS error, walking about); ``window_s``: neighbours further
    away in time than this are not used."""

    max_speed_kmh: float = 120.0
    slack_km: float = 1.0
    window_s: float = 6 * 3600.0

    def __post_init__(self) -> None:
        for name in ("max_speed_kmh", "slack_km", "window_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number; got {value!r}")

    def reach_km(self, dt_s: float) -> float:
        return self.slack_km + self.max_speed_kmh * abs(dt_s) / 3600.0


@dataclass(frozen=True)
class FusedGuess:
    """The time-aware answer: ``best`` (lat, lon), the share of the fused mass within
    ``radius50_km``/``radius90_km`` of it, the neighbours used and why they bound it there,
    and the fused density on the display grid (per steradian, normalised)."""

    best: tuple[float, float]
    radius50_km: float
    radius90_km: float
    used: tuple[Neighbour, ...]
    why: str
    density: np.ndarray
    model_share: float  # the model's own mass inside the time bound: low means they disagree


def _km(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    p1, p2 = math.radians(lat0), np.radians(lat)
    h = (
        np.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * np.cos(p2) * np.sin(np.radians(lon - lon0) / 2) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def log_prior(
    lat: np.ndarray, lon: np.ndarray, neighbours: Sequence[Neighbour], prior: TimePrior
) -> np.ndarray:
    """The log of the time prior at points ``lat``, ``lon`` (broadcast), up to a constant."""
    out = np.zeros(np.broadcast(lat, lon).shape)
    for n in neighbours:
        reach = prior.reach_km(n.dt_s)
        edge = max(prior.slack_km, 0.1 * reach)
        z = (reach - _km(lat, lon, n.lat, n.lon)) / edge
        out += -np.logaddexp(0.0, -z)  # log sigmoid(z), stable
    return out


def fuse(
    density: np.ndarray,
    neighbours: Sequence[Neighbour],
    prior: TimePrior = TimePrior(),
) -> FusedGuess | None:
    """The model's ``density`` (``(H, W)`` per steradian on the display grid) bounded by the
    neighbours within ``prior.window_s``; ``None`` when none is."""
    used = tuple(n for n in neighbours if abs(n.dt_s) <= prior.window_s)
    if not used:
        return None
    height, width = density.shape
    lat, lon = cell_centres(height, width)
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    mass = np.maximum(density.astype(np.float64), 0.0) * cell_areas(height, width)
    total = mass.sum()
    mass = mass / total if total > 0 else np.full_like(mass, 1.0 / mass.size)
    lp = log_prior(glat, glon, used, prior)
    inside = np.exp(lp) > 0.5
    model_share = float(mass[inside].sum())
    log_post = np.log(np.maximum(mass, 1e-300)) + lp
    fused = np.exp(log_post - log_post.max())
    fused /= fused.sum()
    i, j = np.unravel_index(int(np.argmax(fused)), fused.shape)
    best = _refine(density, lat, lon, i, j, used, prior)
    d = _km(glat, glon, *best)
    order = np.argsort(d, axis=None)
    cum = np.cumsum(fused.ravel()[order])
    r50 = float(d.ravel()[order][np.searchsorted(cum, 0.5)])
    r90 = float(d.ravel()[order][min(np.searchsorted(cum, 0.9), cum.size - 1)])
    tight = min(used, key=lambda n: prior.reach_km(n.dt_s))
    r50, r90 = min(r50, prior.reach_km(tight.dt_s)), min(r90, prior.reach_km(tight.dt_s))
    fused_density = (fused / cell_areas(height, width)).astype(np.float32)
    return FusedGuess(
        best, r50, r90, used, _why(used, prior, model_share), fused_density, model_share
    )


def _refine(density, lat, lon, i, j, used, prior, steps: int = 41) -> tuple[float, float]:
    """The best point on a fine grid over cell ``(i, j)`` and its neighbours: the density
    interpolated bilinearly between cell centres, the prior exact."""
    dlat, dlon = 180.0 / len(lat), 360.0 / len(lon)
    flat = np.clip(np.linspace(lat[i] - 1.5 * dlat, lat[i] + 1.5 * dlat, steps), -90, 90)
    flon = np.linspace(lon[j] - 1.5 * dlon, lon[j] + 1.5 * dlon, steps)
    glat, glon = np.meshgrid(flat, flon, indexing="ij")
    # fractional cell indices (row 0 north; columns wrap around the antimeridian)
    r = np.clip((90.0 - glat) / dlat - 0.5, 0, len(lat) - 1)
    c = (glon + 180.0) / dlon - 0.5
    r0 = np.floor(r).astype(int)
    c0 = np.floor(c).astype(int)
    fr, fc = r - r0, c - c0
    r1 = np.minimum(r0 + 1, len(lat) - 1)
    c0w, c1w = c0 % len(lon), (c0 + 1) % len(lon)
    d = np.maximum(density.astype(np.float64), 1e-300)
    value = (
        d[r0, c0w] * (1 - fr) * (1 - fc)
        + d[r0, c1w] * (1 - fr) * fc
        + d[r1, c0w] * fr * (1 - fc)
        + d[r1, c1w] * fr * fc
    )
    score = np.log(np.maximum(value, 1e-300)) + log_prior(glat, glon, used, prior)
    k = np.unravel_index(int(np.argmax(score)), score.shape)
    best_lon = (float(glon[k]) + 180.0) % 360.0 - 180.0
    return float(glat[k]), best_lon


def _when(dt_s: float) -> str:
    minutes = abs(dt_s) / 60.0
    span = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    return f"{span} {'after' if dt_s > 0 else 'before'}"


def _why(used: Sequence[Neighbour], prior: TimePrior, model_share: float) -> str:
    parts = [
        f"{n.label or 'a photo'} ({_when(n.dt_s)}, within {prior.reach_km(n.dt_s):.0f} km)"
        for n in sorted(used, key=lambda n: abs(n.dt_s))[:3]
    ]
    more = f" and {len(used) - 3} more" if len(used) > 3 else ""
    text = f"bounded by {', '.join(parts)}{more} at up to {prior.max_speed_kmh:g} km/h"
    if model_share < 0.05:
        text += (
            f"; the model put only {model_share:.0%} of its probability there, so the time "
            "bound decides"
        )
    return text
