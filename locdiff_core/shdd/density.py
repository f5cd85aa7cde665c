"""The SHDD density ``q_e(u) = exp(sum_lm e_lm Y_lm(u)) / Z_e`` (paper Sec. 4.3, Eq. 12).

``Z_e`` is computed in the log domain from a quadrature that stays accurate however sharp the
density gets. A global equiangular grid (Fejér x trapezoid, see :mod:`grid`) handles the smooth
part. Peaks narrower than the grid -- ``q`` of ``encode(p)`` is a bump only
``~45,000 / (L+1)^2`` km wide, about 1 km at ``L = 200`` -- are found as grid maxima, refined by
Newton's method in float64 (:mod:`peaks`), and integrated on their own polar cap quadrature
(geometric radial panels down to the peak's width, :mod:`caps`). A smooth partition of unity
splits the work between cap and grid, so nothing is counted twice and no hard cap boundary
enters the grid's integrand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from locdiff_core.geo import (
    angle_between,
    as_float_tensor,
    check_latlon,
    latlon_to_xyz,
)
from locdiff_core.shdd.caps import cap_partition, cap_quadrature
from locdiff_core.shdd.grid import EquiangularGrid, evaluate_grid, evaluate_rings
from locdiff_core.shdd.harmonics import degree_of, encode
from locdiff_core.shdd.local import LocalEvaluator, evaluate_points
from locdiff_core.shdd.peaks import Peaks, grid_maxima, refine_maxima

#: Sharp peaks with less than e^-this of their row's mass get no cap of their own.
_NEGLIGIBLE_MASS = 16.0
#: Peaks whose log-density is this far below the maximum carry no measurable mass.
_NEGLIGIBLE_LOG = 40.0


def check_coeffs(coeffs, *, name: str = "coeffs") -> tuple[Tensor, int]:
    """Validate a ``[B, (L+1)^2]`` (or ``[(L+1)^2]``) coefficient tensor; returns it 2-D and L."""
    t = torch.as_tensor(coeffs)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape [B, (L+1)^2], got {tuple(t.shape)}")
    degree = degree_of(t.shape[1])
    if not bool(torch.isfinite(t.detach()).all()):
        row = int((~torch.isfinite(t.detach())).any(1).nonzero()[0, 0])
        raise ValueError(f"{name}[{row}] contains NaN or inf")
    return t, degree


def default_grid(degree: int, oversample: float = 1.5) -> EquiangularGrid:
    """The quadrature and search grid used for degree ``L``: ``2 * oversample * (L+1)`` rings."""
    num_lat = max(16, math.ceil(2.0 * oversample * (degree + 1)))
    return EquiangularGrid(num_lat, 2 * num_lat)


def kernel_sigma_rad(degree: int) -> float:
    """Width (Gaussian sigma, radians) of the peak of ``q`` for ``e = encode(p)``.

    Near ``p``: ``sum_l (2l+1)/(4 pi) P_l(cos g) ~ const - g^2 L (L+1)^2 (L+2) / (32 pi)``.
    """
    L = max(degree, 1)
    return math.sqrt(16.0 * math.pi / (L * (L + 1) ** 2 * (L + 2)))


# ----------------------------------------------------------------------------- partition function


@dataclass
class SharpCaps:
    """Caps around peaks the global grid cannot resolve."""

    item: Tensor  # (K,)
    centre: Tensor  # (K, 3)
    radius: Tensor  # (K,)
    sigma: Tensor  # (K, 2)
    value: Tensor  # (K,)


def find_peaks(
    coeffs: Tensor, degree: int, grid: EquiangularGrid, f_grid: Tensor, per_item: int
) -> Peaks:
    """Refined top local maxima of each row's ``f`` (those within reach of its maximum)."""
    index, value = grid_maxima(f_grid.detach(), per_item)
    keep = value > (value[:, :1] - _NEGLIGIBLE_LOG)
    item, slot = keep.nonzero(as_tuple=True)
    flat = index[item, slot]
    lat, lon = grid.latlon(torch.float64, coeffs.device)
    xyz0 = latlon_to_xyz(lat.reshape(-1)[flat], lon.reshape(-1)[flat])
    u, val, sigma = refine_maxima(coeffs[item], degree, xyz0, grid.spacing_rad)
    return Peaks(item=item, xyz=u, value=val, sigma=sigma)


def sharp_caps(peaks: Peaks, grid: EquiangularGrid) -> SharpCaps:
    """Caps for the peaks narrower than about 1.5 grid spacings, overlapping ones dropped."""
    h = grid.spacing_rad
    sharp = peaks.sigma[:, 0] < 1.5 * h
    sig = peaks.sigma[sharp]
    radius = torch.maximum(12.0 * sig[:, 1].clamp(max=1.0), torch.full_like(sig[:, 1], 6.0 * h))
    radius = radius.clamp(max=0.5)
    item, centre, value = peaks.item[sharp], peaks.xyz[sharp], peaks.value[sharp]
    sel = suppress_nearby(value, item, centre, radius[:, None] + radius[None, :])
    sel = sel.sort().values
    return SharpCaps(item[sel], centre[sel], radius[sel], sig[sel], value[sel])


def _groups(item: Tensor) -> list[Tensor]:
    """Indices of each distinct value of ``item``, in order of value."""
    order = torch.argsort(item, stable=True)
    counts = torch.unique_consecutive(item[order], return_counts=True)[1]
    return list(torch.split(order, counts.tolist()))


def suppress_nearby(
    score: Tensor,
    item: Tensor,
    xyz: Tensor,
    separation: Tensor | float,
    per_item: int | None = None,
) -> Tensor:
    """Greedy non-maximum suppression: indices of the best-scoring points ``xyz [K, 3]``, each
    farther than ``separation`` (rad; one number or ``[K, K]``) from every better one kept for
    the same ``item``, at most ``per_item`` per item."""
    kept: list[int] = []
    for group in _groups(item):  # one small distance matrix per item
        angle = angle_between(xyz[group][:, None], xyz[group][None, :])
        sep = separation if isinstance(separation, float) else separation[group][:, group]
        close = (angle < sep).tolist()
        members = group.tolist()
        mine: list[int] = []
        for i in torch.argsort(score[group], descending=True).tolist():
            if per_item is not None and len(mine) >= per_item:
                break
            if not any(close[i][j] for j in mine):
                mine.append(i)
        kept += [members[i] for i in mine]
    return torch.tensor(kept, dtype=torch.long, device=xyz.device)


def _drop_negligible(caps: SharpCaps, grid_lse: Tensor) -> SharpCaps:
    """Caps whose peak holds a measurable share of its row's mass.

    A peak's mass is about ``exp(value) 2 pi sigma_1 sigma_2``; one below ``e^-_NEGLIGIBLE_MASS``
    of the row's largest (peak or grid) mass changes ``log Z`` by less than that, however badly
    the grid integrates it.
    """
    log_mass = caps.value + torch.log(
        2 * math.pi * caps.sigma[:, 0] * caps.sigma[:, 1].clamp(max=1.0)
    )
    ref = grid_lse.scatter_reduce(0, caps.item, log_mass, "amax")
    keep = log_mass >= ref[caps.item] - _NEGLIGIBLE_MASS
    return SharpCaps(
        *(t[keep] for t in (caps.item, caps.centre, caps.radius, caps.sigma, caps.value))
    )


def log_partition(
    coeffs,
    *,
    grid: EquiangularGrid | None = None,
    f_grid: Tensor | None = None,
    peaks: Peaks | None = None,
) -> Tensor:
    """``log Z_e = log of the integral of exp(e . Y)`` over the unit sphere, ``[B]``.

    Differentiable in ``coeffs`` (the quadrature nodes are chosen without gradient). Computed
    in float64 whatever the input dtype (``f`` reaches ``(L+1)^2 / 4 pi``, so float32 would lose
    1e-4 of the mass to rounding alone) and returned in the input dtype. ``f_grid`` (float64)
    and ``peaks`` let a caller that already evaluated them on ``grid`` reuse them.
    """
    coeffs, L = check_coeffs(coeffs)
    out_dtype = coeffs.dtype
    coeffs = coeffs.to(torch.float64)
    grid = grid or default_grid(L)
    if f_grid is None:
        f_grid = evaluate_grid(coeffs, L, grid)
    B = coeffs.shape[0]
    logw = torch.log(grid.weights(coeffs.dtype, coeffs.device))  # (R, 1)
    terms = (f_grid + logw).reshape(B, -1)
    if peaks is None:
        peaks = find_peaks(coeffs, L, grid, f_grid, per_item=4)
    caps = _drop_negligible(sharp_caps(peaks, grid), torch.logsumexp(terms.detach(), dim=1))
    if caps.item.numel() == 0:
        return torch.logsumexp(terms, dim=1).to(out_dtype)
    # Grid side of the partition of unity: remove what the caps integrate.
    lat, lon = grid.latlon(torch.float64, coeffs.device)
    node_xyz = latlon_to_xyz(lat, lon)  # (R, C, 3)
    taken = torch.zeros(B, grid.num_lat, grid.num_lon, dtype=torch.float64, device=coeffs.device)
    colat = torch.atan2(caps.centre[:, :2].norm(dim=1), caps.centre[:, 2])
    h = grid.spacing_rad
    first = ((colat - caps.radius) / h - 1).floor().clamp(min=0).long().tolist()
    last = ((colat + caps.radius) / h + 1).ceil().clamp(max=grid.num_lat).long().tolist()
    for k in range(caps.item.numel()):  # only the rings a cap reaches
        rows = slice(first[k], last[k])
        gamma = angle_between(node_xyz[rows], caps.centre[k][None, None])
        taken[caps.item[k], rows] += cap_partition(gamma, caps.radius[k])
    grid_log_share = torch.log1p(-taken.clamp(max=1.0)).reshape(B, -1).to(coeffs.dtype)
    terms = terms + grid_log_share
    # Cap side.
    nodes, weight, gamma = cap_quadrature(caps.centre, caps.radius, 0.5 * caps.sigma[:, 0])
    share = weight * cap_partition(gamma, caps.radius[:, None])
    f_cap = LocalEvaluator(coeffs[caps.item], L, caps.centre, caps.radius)(nodes)
    cap_terms = f_cap + torch.log(share).to(f_cap.dtype)
    # log of (grid sum + the sums of each row's caps), with one shift per row for stability.
    grid_lse = torch.logsumexp(terms, dim=1)  # (B,)
    cap_lse = torch.logsumexp(cap_terms, dim=1)  # (caps,)
    shift = grid_lse.detach().scatter_reduce(0, caps.item, cap_lse.detach(), "amax")
    total = torch.exp(grid_lse - shift).index_add(
        0, caps.item, torch.exp(cap_lse - shift[caps.item])
    )
    return (shift + torch.log(total)).to(out_dtype)


def _query_points(lat_deg, lon_deg, batch: int) -> tuple[Tensor, Tensor, bool]:
    lat = as_float_tensor(lat_deg)
    lon = as_float_tensor(lon_deg, device=lat.device)
    per_item = lat.dim() == 2
    if per_item:
        if lat.shape[0] != batch or lat.shape != lon.shape:
            raise ValueError(
                f"per-item query points must be [B={batch}, M] for both lat and lon, got "
                f"{tuple(lat.shape)} and {tuple(lon.shape)}"
            )
        flat_lat, flat_lon = check_latlon(lat.reshape(-1), lon.reshape(-1), name="query points")
        return flat_lat.reshape(lat.shape), flat_lon.reshape(lat.shape), True
    flat_lat, flat_lon = check_latlon(lat, lon, name="query points")
    return flat_lat, flat_lon, False


def log_density(coeffs, lat_deg, lon_deg) -> Tensor:
    """Normalised log-density ``log q_e`` (per steradian) at query points, ``[B, M]``.

    ``lat_deg, lon_deg`` are ``[M]`` (shared by every row of ``coeffs``) or ``[B, M]``.
    """
    coeffs, L = check_coeffs(coeffs)
    out_dtype = coeffs.dtype
    coeffs = coeffs.to(torch.float64)
    lat, lon, per_item = _query_points(lat_deg, lon_deg, coeffs.shape[0])
    lat, lon = lat.to(torch.float64), lon.to(torch.float64)
    log_z = log_partition(coeffs)
    if per_item:
        _B, _M = lat.shape
        f = evaluate_points(coeffs, latlon_to_xyz(lat, lon), L)
    else:
        f = coeffs @ encode(lat, lon, L).t()
    return (f - log_z[:, None]).to(out_dtype)


def density_grid(coeffs, height: int, width: int) -> Tensor:
    """Normalised density ``q_e`` (per steradian) on a cell-centred equirectangular grid,
    ``[B, height, width]``; row 0 is the north, column 0 starts at -180 degrees."""
    coeffs, L = check_coeffs(coeffs)
    out_dtype = coeffs.dtype
    coeffs = coeffs.to(torch.float64)
    if height < 1 or width < 1:
        raise ValueError(f"density_grid needs a positive size, got {height} x {width}")
    log_z = log_partition(coeffs)
    lat = EquiangularGrid(max(height, 2), max(width, 3)).lat_deg(coeffs.dtype, coeffs.device)
    lat = lat if height >= 2 else torch.zeros(1, dtype=coeffs.dtype, device=coeffs.device)
    if width > 2 * L:
        f = evaluate_rings(coeffs, L, lat, width)
    else:  # too few columns for the FFT path: evaluate the nodes directly
        lon = (-180.0 + (torch.arange(width, dtype=torch.float64) + 0.5) * 360.0 / width).to(lat)
        glat = lat[:, None].expand(-1, width).reshape(-1)
        glon = lon[None, :].expand(lat.numel(), -1).reshape(-1)
        f = (coeffs @ encode(glat, glon, L).t()).reshape(-1, lat.numel(), width)
    return torch.exp(f - log_z[:, None, None]).to(out_dtype)
