"""Geometry on the unit sphere and on the Earth.

Conventions, stated once for the whole code base:

* A location is ``(lat, lon)`` in **degrees**, latitude first, on the WGS84 sphere approximation
  of radius :data:`EARTH_RADIUS_KM` (the mean radius; SHDD works on a sphere, so distances are
  great-circle distances).
* Latitude lies in ``[-90, 90]``; longitude is wrapped into ``[-180, 180)``.
* Unit vectors are ``(x, y, z)`` with ``z`` towards the north pole and ``x`` towards
  ``(lat, lon) = (0, 0)``.
* Spherical-harmonics code uses colatitude ``theta = 90° - lat`` and azimuth ``phi = lon``.

Every function accepts torch tensors on any device and keeps their floating dtype; the radius
and a float form of the distance live in :mod:`locdiff_core.earth`, which does not need torch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from locdiff_core.earth import EARTH_RADIUS_KM as EARTH_RADIUS_KM  # one radius for the code base

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def as_float_tensor(x, dtype: torch.dtype | None = None, device=None) -> Tensor:
    """``x`` as a floating tensor (float64 for Python numbers, lists and integer arrays)."""
    if isinstance(x, int | float | list | tuple):
        x = torch.as_tensor(x, dtype=torch.float64)
    t = torch.as_tensor(x, device=device)
    if dtype is not None:
        return t.to(dtype)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t


def promote(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The tensors cast to their common floating dtype (float32 with float64 gives float64)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return tuple(t.to(dtype) for t in tensors)


def wrap_lon(lon_deg: Tensor) -> Tensor:
    """Longitude wrapped into ``[-180, 180)`` degrees."""
    return torch.remainder(lon_deg + 180.0, 360.0) - 180.0


def check_latlon(lat_deg, lon_deg, *, name: str = "points") -> tuple[Tensor, Tensor]:
    """Validate and broadcast a batch of locations; returns 1-D ``(lat, lon)`` tensors.

    Longitudes are wrapped; latitudes outside ``[-90, 90]``, NaN/inf values and mismatched
    shapes raise ``ValueError`` with the offending index.
    """
    lat = as_float_tensor(lat_deg)
    lon = as_float_tensor(lon_deg, device=lat.device)
    lat, lon = promote(lat, lon)
    if lat.dim() > 1 or lon.dim() > 1:
        raise ValueError(
            f"{name}: lat and lon must be scalars or 1-D tensors, got shapes "
            f"{tuple(lat.shape)} and {tuple(lon.shape)}; flatten them first"
        )
    lat, lon = lat.reshape(-1), lon.reshape(-1)
    if lat.numel() != lon.numel():
        raise ValueError(
            f"{name}: lat has {lat.numel()} values but lon has {lon.numel()}; they must match"
        )
    for arr, label in ((lat, "lat"), (lon, "lon")):
        bad = ~torch.isfinite(arr)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"{name}: {label}[{i}] is {arr[i].item()}; coordinates must be finite")
    out = (lat < -90.0) | (lat > 90.0)
    if bool(out.any()):
        i = int(out.nonzero()[0, 0])
        raise ValueError(
            f"{name}: lat[{i}] = {lat[i].item():.6g} is outside [-90, 90] degrees "
            "(did you swap lat and lon?)"
        )
    return lat, wrap_lon(lon)


def latlon_to_xyz(lat_deg: Tensor, lon_deg: Tensor) -> Tensor:
    """Unit vectors ``(..., 3)`` for locations in degrees."""
    lat, lon = torch.deg2rad(lat_deg), torch.deg2rad(lon_deg)
    c = torch.cos(lat)
    return torch.stack((c * torch.cos(lon), c * torch.sin(lon), torch.sin(lat)), dim=-1)


def xyz_to_latlon(xyz: Tensor) -> tuple[Tensor, Tensor]:
    """``(lat, lon)`` in degrees of (not necessarily unit) vectors ``(..., 3)``."""
    x, y, z = xyz.unbind(-1)
    lat = torch.rad2deg(torch.atan2(z, torch.hypot(x, y)))
    lon = torch.rad2deg(torch.atan2(y, x))
    return lat, wrap_lon(lon)


def angle_between(u: Tensor, v: Tensor) -> Tensor:
    """Angle in radians between unit vectors (broadcast over ``...``); exact near 0 and pi."""
    cross = torch.linalg.cross(u, v, dim=-1).norm(dim=-1)
    dot = (u * v).sum(-1)
    return torch.atan2(cross, dot)


def great_circle_km(lat1, lon1, lat2, lon2) -> Tensor:
    """Great-circle distance in km between locations in degrees (broadcasts)."""
    lat1, lon1, lat2, lon2 = (as_float_tensor(t) for t in (lat1, lon1, lat2, lon2))
    lat1, lon1, lat2, lon2 = promote(lat1, lon1, lat2, lon2)
    p1, p2 = torch.broadcast_tensors(latlon_to_xyz(lat1, lon1), latlon_to_xyz(lat2, lon2))
    return angle_between(p1, p2) * EARTH_RADIUS_KM


def fibonacci_lattice(n: int, *, dtype=torch.float64, device=None) -> tuple[Tensor, Tensor]:
    """``n`` nearly equal-area points on the sphere (lat, lon in degrees)."""
    if n < 1:
        raise ValueError(f"fibonacci_lattice needs n >= 1, got {n}")
    i = torch.arange(n, dtype=torch.float64, device=device)
    z = 1.0 - (2.0 * i + 1.0) / n
    lat = torch.rad2deg(torch.asin(z))
    lon = wrap_lon(torch.rad2deg(torch.remainder(i * GOLDEN_ANGLE, 2 * math.pi)))
    return lat.to(dtype), lon.to(dtype)


def uniform_points(
    n: int, *, dtype=torch.float64, device=None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``n`` independent uniform random points on the sphere (lat, lon in degrees)."""
    z = torch.rand(n, dtype=torch.float64, generator=generator, device=device) * 2.0 - 1.0
    lon = torch.rand(n, dtype=torch.float64, generator=generator, device=device) * 360.0 - 180.0
    lat = torch.rad2deg(torch.asin(z))
    return lat.to(dtype), lon.to(dtype)


def tangent_frame(u: Tensor) -> tuple[Tensor, Tensor]:
    """Two unit vectors ``(e1, e2)`` completing unit vectors ``u (..., 3)`` to an orthonormal
    right-handed frame; well defined everywhere, the poles included."""
    axis = torch.zeros_like(u)
    use_x = u[..., 2].abs() > 0.9
    axis[..., 2] = (~use_x).to(u.dtype)
    axis[..., 0] = use_x.to(u.dtype)
    e1 = torch.linalg.cross(axis, u, dim=-1)
    e1 = e1 / e1.norm(dim=-1, keepdim=True)
    e2 = torch.linalg.cross(u, e1, dim=-1)
    return e1, e2


def exp_map(u: Tensor, e1: Tensor, e2: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Points reached from ``u`` by moving ``hypot(x, y)`` radians along ``x e1 + y e2``.

    ``u, e1, e2`` broadcast against ``x, y`` with a trailing axis of 3 added.
    """
    r = torch.hypot(x, y)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    sinc = torch.where(r > 0, torch.sin(r) / safe, torch.ones_like(r))
    d = x[..., None] * e1 + y[..., None] * e2
    return torch.cos(r)[..., None] * u + sinc[..., None] * d


def spherical_mean(
    lat_deg: Tensor, lon_deg: Tensor, weights: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Geographic centre of points along the last axis (weighted mean of unit vectors,
    projected back to the sphere). Antipodal sets have no centre; the result is then arbitrary
    but finite."""
    xyz = latlon_to_xyz(as_float_tensor(lat_deg), as_float_tensor(lon_deg))
    if weights is None:
        m = xyz.mean(dim=-2)
    else:
        w = as_float_tensor(weights, dtype=xyz.dtype, device=xyz.device)
        m = (xyz * w[..., None]).sum(-2) / w.sum(-1, keepdim=True).clamp_min(1e-300)
    return xyz_to_latlon(m)
