"""The geolocation field's standard numbers (the paper's evaluation, Sec. 5).

Given great-circle errors in km (:func:`locdiff_core.geo.great_circle_km` between predicted and
true locations):

* accuracy at the street / city / region / country / continent scales: the percentage of
  errors at or below 1, 25, 200, 750 and 2500 km (:data:`THRESHOLDS_KM`);
* the median and mean error in km;
* GeoScore, ``5000 * exp(-d / 1492.7)`` per prediction, averaged (the GeoGuessr-style score).

Inputs may be numpy arrays, torch tensors (any device) or sequences of numbers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from locdiff_core.geo import as_float_tensor

THRESHOLDS_KM: tuple[int, ...] = (1, 25, 200, 750, 2500)
GEOSCORE_MAX = 5000.0
GEOSCORE_SCALE_KM = 1492.7


def accuracy_key(threshold_km: int) -> str:
    """The :func:`summarize` key of the accuracy within ``threshold_km`` (``"acc_25km"``)."""
    return f"acc_{threshold_km}km"


def check_distances(distance_km, *, name: str = "distance_km") -> Tensor:
    """Distances as a 1-D float64 CPU tensor; NaN/inf or negative values raise ``ValueError``
    naming the first bad index."""
    d = as_float_tensor(distance_km).detach().to("cpu", torch.float64).reshape(-1)
    bad = ~torch.isfinite(d)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"{name}[{i}] is {d[i].item()}; distances must be finite")
    neg = d < 0
    if bool(neg.any()):
        i = int(neg.nonzero()[0, 0])
        raise ValueError(
            f"{name}[{i}] = {d[i].item():.6g} km is negative; pass great-circle distances"
        )
    return d


def geoscore(distance_km) -> Tensor:
    """GeoScore ``5000 * exp(-d / 1492.7)`` per distance in km (same shape; 5000 at d = 0)."""
    d = as_float_tensor(distance_km)
    return GEOSCORE_MAX * torch.exp(-d / GEOSCORE_SCALE_KM)


def summarize(distance_km) -> dict[str, float | int]:
    """The standard numbers for a set of errors in km.

    Returns ``count``, ``acc_1km`` ... ``acc_2500km`` (percent of errors ``<=`` the threshold),
    ``median_km`` (for an even count, the mean of the two middle values), ``mean_km`` and
    ``geoscore`` (mean GeoScore), all Python numbers so the result serialises to JSON.
    """
    d = check_distances(distance_km)
    if d.numel() == 0:
        raise ValueError("summarize needs at least one distance; got none")
    out: dict[str, float | int] = {"count": int(d.numel())}
    for t in THRESHOLDS_KM:
        out[accuracy_key(t)] = 100.0 * float((d <= t).to(torch.float64).mean())
    # torch.median returns the lower middle value and torch.quantile caps the input size.
    out["median_km"] = float(np.median(d.numpy()))
    out["mean_km"] = float(d.mean())
    out["geoscore"] = float(geoscore(d).mean())
    return out
