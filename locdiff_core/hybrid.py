"""LocDiff-H (paper Appendix A.4, Table 1): LocDiffusion narrows the regions, GeoCLIP's
retrieval picks the place within them.

LocDiffusion's decoded samples of a photo mark its candidate regions; GeoCLIP's softmax over
the gallery is restricted to the gallery points within ``radius_km`` (200 km in the paper) of
any sample, and the hybrid answers with the retrieval's result inside those regions (its top
point as the paper's answer, its clusters as candidates; the samples stay LocDiffusion's).
When no gallery point lies within the radius of any sample, LocDiffusion's own prediction is
the answer and says so (its ``engine`` is ``locdiff``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from locdiff_core.engines import Engine
from locdiff_core.geo import EARTH_RADIUS_KM, latlon_to_xyz
from locdiff_core.geoclip.gallery import Gallery
from locdiff_core.geoclip.head import GeoCLIPHead, RetrievalConfig
from locdiff_core.predictor import LocationPrediction

DEFAULT_RADIUS_KM = 200.0


def region_masks(gallery: Gallery, samples: Sequence[np.ndarray], radius_km: float) -> Tensor:
    """``[N x G]`` bool: gallery point ``g`` lies within ``radius_km`` of a sample of photo ``n``
    (``samples[n]`` is ``(K, 2)`` lat, lon degrees).

    Only the gallery points in the latitude bands of the samples are tested (a point within
    ``radius_km`` is never further than that in latitude), with float64 dot products."""
    if not radius_km > 0:
        raise ValueError(f"the hybrid's radius must be positive, got {radius_km} km")
    angle = min(radius_km / EARTH_RADIUS_KM, math.pi)
    cos_r, band = math.cos(angle), math.degrees(angle) + 1e-9
    order = gallery.lat_order
    lats = gallery.latlon[order, 0]
    xyz = gallery.xyz_np
    out = np.zeros((len(samples), len(gallery)), dtype=bool)
    for n, points in enumerate(samples):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if points.shape[0] == 0:
            continue
        lo = np.searchsorted(lats, points[:, 0] - band, side="left")
        hi = np.searchsorted(lats, points[:, 0] + band, side="right")
        rows = order[np.concatenate([np.arange(a, b) for a, b in _merged(lo, hi)])]
        p = torch.as_tensor(points)
        centres = latlon_to_xyz(p[:, 0], p[:, 1]).numpy()  # (K, 3)
        near = ((xyz[rows] @ centres.T) >= cos_r).any(1)
        out[n, rows[near]] = True
    return torch.from_numpy(out)


def _merged(lo: np.ndarray, hi: np.ndarray) -> list[tuple[int, int]]:
    """The union of the half-open index ranges ``[lo[k], hi[k])``, as disjoint ranges."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(zip(lo.tolist(), hi.tolist(), strict=True)):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def hybrid_predict(
    geoclip: GeoCLIPHead,
    raw,
    locdiff: Sequence[LocationPrediction],
    config: RetrievalConfig | None = None,
    *,
    radius_km: float = DEFAULT_RADIUS_KM,
    density_size: tuple[int, int] | None = None,
) -> list[LocationPrediction]:
    """The hybrid's predictions of photos with raw backbone features ``raw`` (``[N x 768]``)
    and LocDiffusion predictions ``locdiff`` (one per row)."""
    config = config or RetrievalConfig()
    masks = region_masks(geoclip.gallery, [p.samples for p in locdiff], radius_km)
    restricted = geoclip.predict(
        raw, config, masks=masks, density_size=density_size, engine=Engine.HYBRID
    )
    out = []
    for own, hybrid in zip(locdiff, restricted, strict=True):
        if hybrid is None:
            out.append(dataclasses.replace(own, engine=Engine.LOCDIFF))
        else:
            out.append(dataclasses.replace(hybrid, samples=own.samples))
    return out
