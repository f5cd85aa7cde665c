"""The learning-free mode-seeking SHDD decoder (paper Sec. 4.4, Eq. 16 and 18).

Given coefficients ``e``, decoding returns the location whose window (spherical cap) of radius
``rho`` holds the most probability mass of ``q_e``, together with that mass.

Search (no anchors given):

1. ``f = e . Y`` on an equiangular grid through per-ring Legendre sums and an inverse real FFT
   (:mod:`grid`), and ``log Z`` with sharp peaks refined (:mod:`density`, :mod:`peaks`).
2. Candidates: the local maxima of ``f`` (every mode of ``q`` is one), refined by Newton's
   method in float64, and the local maxima of the window mass on the grid (which catch broad
   mass spread over several small bumps); duplicates are suppressed.
3. The best candidates by estimated window mass are integrated exactly on a polar cap
   quadrature that resolves the peak inside, then moved by mean shift (the window's centre goes
   to its centre of mass) until the step is below a millimetre. The fixed point maximises the
   window mass smoothed by an Epanechnikov profile; for a peak that is symmetric inside its
   window it is the peak itself, which is why ``decode(encode(p))`` returns ``p`` to well under
   a metre even where the peak is narrower than ``rho``.

With ``anchors`` (any set of locations, such as a photo gallery or the paper's uniform grid of
Table 2) the decoder instead scores every anchor by the share of the anchors' mass within
``rho`` of it and returns the best anchor.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from locdiff_core.geo import (
    EARTH_RADIUS_KM,
    angle_between,
    as_float_tensor,
    check_latlon,
    latlon_to_xyz,
    xyz_to_latlon,
)
from locdiff_core.shdd.caps import cap_quadrature
from locdiff_core.shdd.density import (
    check_coeffs,
    default_grid,
    find_peaks,
    kernel_sigma_rad,
    log_partition,
    suppress_nearby,
)
from locdiff_core.shdd.grid import disc_sums, evaluate_grid
from locdiff_core.shdd.harmonics import encode
from locdiff_core.shdd.local import LocalEvaluator
from locdiff_core.shdd.peaks import grid_maxima

_MEAN_SHIFT_ITERATIONS = 12
_MEAN_SHIFT_TOL_RAD = 1e-9  # 6 mm
_RELATIVE_MASS_FLOOR = 1e-3  # candidates with less than this share of the best are dropped


def default_radius_km(degree: int) -> float:
    """Default window radius: three widths of the SHDD peak at this degree (59 km at L=47)."""
    return 3.0 * kernel_sigma_rad(degree) * EARTH_RADIUS_KM


def _window(f: LocalEvaluator, rows: Tensor, centre: Tensor, radius: float, inner: Tensor, log_z):
    """Mass and centre of mass of the window around ``centre [K, 3]`` for evaluator rows
    ``rows`` (float64)."""
    K = centre.shape[0]
    rad = torch.full((K,), radius, dtype=torch.float64, device=centre.device)
    nodes, weight, _ = cap_quadrature(centre, rad, inner, radial_nodes=5, azimuth_nodes=24)
    logq = f(nodes, rows) - log_z[:, None]
    mass_w = torch.exp(logq) * weight  # (K, P)
    mass = mass_w.sum(1)
    centroid = (mass_w[..., None] * nodes).sum(1)
    return mass, centroid


def _laplace_mass(value: Tensor, sigma: Tensor, log_z: Tensor, radius: float) -> Tensor:
    """Rough mass of a peak inside a window: Gaussian widths capped by the window radius."""
    s = sigma.clamp(max=radius)
    return torch.exp(value - log_z) * 2.0 * math.pi * s[:, 0] * s[:, 1]


def decode(
    coeffs,
    radius_km: float | None = None,
    anchors=None,
    *,
    num_candidates: int = 3,
    with_mass: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """Decode SHDD coefficients ``[B, (L+1)^2]`` to locations.

    Args:
        coeffs: ``[B, (L+1)^2]`` or ``[(L+1)^2]``, any float dtype, CPU or CUDA.
        radius_km: the window radius ``rho``; default :func:`default_radius_km` of the degree.
        anchors: optional ``(lat_deg, lon_deg)`` pair of ``[M]`` tensors (or an ``[M, 2]``
            tensor) to decode over instead of the whole sphere.
        num_candidates: windows per row refined exactly (the rest are ranked on the grid).
        with_mass: compute the normalising constant ``Z`` for the returned mass. The location
            does not depend on it; ``False`` skips that work (a third of the time for sharp,
            multimodal densities) and returns ``mass`` as NaN.

    Returns:
        ``(lat_deg, lon_deg, mass)``, each ``[B]`` float64: the best window's centre and the
        probability mass of ``q_e`` inside it (with anchors: the share of the anchors' mass).
    """
    coeffs, L = check_coeffs(coeffs)
    coeffs = coeffs.detach().to(torch.float64)
    if radius_km is None:
        radius_km = default_radius_km(L)
    if not (isinstance(radius_km, int | float) and math.isfinite(radius_km) and radius_km > 0):
        raise ValueError(f"radius_km must be a positive number of km, got {radius_km!r}")
    radius = min(radius_km / EARTH_RADIUS_KM, math.pi)
    if anchors is not None:
        return _decode_anchors(coeffs, L, radius, anchors)
    return _decode_sphere(coeffs, L, radius, num_candidates, with_mass)


def _decode_sphere(coeffs: Tensor, L: int, radius: float, num_candidates: int, with_mass: bool):
    B, dev = coeffs.shape[0], coeffs.device
    grid = default_grid(L)
    f = evaluate_grid(coeffs, L, grid)
    peaks = find_peaks(coeffs, L, grid, f, per_item=2 * num_candidates)
    if with_mass:
        log_z = log_partition(coeffs, grid=grid, f_grid=f, peaks=peaks)
    else:  # any per-row shift ranks the windows the same; the grid's sum keeps exp() in range
        log_z = torch.logsumexp((f + torch.log(grid.weights(f.dtype, f.device))).flatten(1), 1)
    # Window masses on the grid: good for resolved mass, blind to sharper peaks.
    cell_mass = torch.exp(f + torch.log(grid.weights(f.dtype, dev)) - log_z[:, None, None])
    window = disc_sums(cell_mass, grid, radius)
    w_index, w_value = grid_maxima(window, num_candidates)
    lat, lon = grid.latlon(torch.float64, dev)
    node_xyz = latlon_to_xyz(lat.reshape(-1), lon.reshape(-1))
    # Candidate list: refined peaks (mass estimated by Laplace) and grid windows.
    items = [peaks.item, torch.arange(B, device=dev).repeat_interleave(w_index.shape[1])]
    xyz = [peaks.xyz, node_xyz[w_index.reshape(-1)]]
    estimate = [
        torch.maximum(
            _laplace_mass(peaks.value, peaks.sigma, log_z[peaks.item], radius),
            window.reshape(B, -1)[peaks.item, _nearest_node(peaks.xyz, node_xyz)],
        ),
        w_value.reshape(-1),
    ]
    inner = [
        0.5 * peaks.sigma[:, 0].clamp(max=radius),
        torch.full((w_index.numel(),), radius / 4.0, dtype=torch.float64, device=dev),
    ]
    item, xyz, estimate, inner = (torch.cat(t) for t in (items, xyz, estimate, inner))
    best_estimate = torch.full((B,), 0.0, dtype=torch.float64, device=dev)
    best_estimate = best_estimate.scatter_reduce(0, item, estimate.nan_to_num(0.0), "amax")
    ok = torch.isfinite(estimate) & (estimate >= _RELATIVE_MASS_FLOOR * best_estimate[item])
    item, xyz, estimate, inner = item[ok], xyz[ok], estimate[ok], inner[ok]
    chosen = _top_per_item(item, xyz, estimate, num_candidates, radius, grid.spacing_rad)
    item, xyz, inner = item[chosen], xyz[chosen], inner[chosen]
    # One exact window per candidate ranks them; only each row's winner is then moved. All
    # windows are evaluated on local expansions around the candidates.
    reach = torch.full((item.numel(),), 2.0 * radius + grid.spacing_rad, dtype=torch.float64)
    f = LocalEvaluator(coeffs[item], L, xyz, reach.to(dev))
    rows = torch.arange(item.numel(), device=dev)
    mass, _ = _window(f, rows, xyz, radius, inner, log_z[item])
    # Each row's winner: its candidate of the largest mass (of equal ones, the last), found on
    # the device without a host round trip per candidate.
    best = torch.full((B,), -math.inf, dtype=mass.dtype, device=dev)
    best = best.scatter_reduce(0, item, mass, "amax")
    top = mass == best[item]
    winner = torch.full((B,), -1, dtype=torch.long, device=dev)
    winner = winner.scatter_reduce(0, item[top], rows[top], "amax")
    mass, centre = _mean_shift(f, winner, xyz[winner], inner[winner], radius, log_z)
    lat_out, lon_out = xyz_to_latlon(centre)
    mass = mass.clamp(0.0, 1.0) if with_mass else torch.full_like(mass, math.nan)
    return lat_out, lon_out, mass


def _nearest_node(xyz: Tensor, node_xyz: Tensor) -> Tensor:
    return (xyz @ node_xyz.t()).argmax(1)


def _top_per_item(item, xyz, estimate, k, radius, spacing) -> Tensor:
    """Indices of the ``k`` best candidates per item after non-maximum suppression."""
    sep = max(min(radius, spacing), 1e-9)
    return suppress_nearby(estimate, item, xyz, float(sep), per_item=k)


def _mean_shift(f: LocalEvaluator, rows: Tensor, xyz, inner, radius, log_z):
    """Move each window (evaluator row ``rows[b]``) to its centre of mass until it stops;
    returns mass and centre."""
    centre = xyz.clone()
    mass = torch.zeros(rows.numel(), dtype=torch.float64, device=xyz.device)
    active = torch.ones(rows.numel(), dtype=torch.bool, device=xyz.device)
    for _ in range(_MEAN_SHIFT_ITERATIONS):
        idx = active.nonzero()[:, 0]
        if idx.numel() == 0:
            break
        m, c = _window(f, rows[idx], centre[idx], radius, inner[idx], log_z[idx])
        mass[idx] = m
        norm = c.norm(dim=1, keepdim=True)
        target = torch.where(norm > 0, c / norm.clamp_min(1e-300), centre[idx])
        step = angle_between(target, centre[idx])
        centre[idx] = target
        active[idx] = step > _MEAN_SHIFT_TOL_RAD
    return mass, centre


def _anchor_tensors(anchors, device) -> tuple[Tensor, Tensor]:
    if isinstance(anchors, tuple | list) and len(anchors) == 2:
        lat, lon = anchors
    else:
        a = as_float_tensor(anchors)
        if a.dim() != 2 or a.shape[1] != 2:
            raise ValueError(
                f"anchors must be a (lat_deg, lon_deg) pair or an [M, 2] tensor, got shape "
                f"{tuple(a.shape)}"
            )
        lat, lon = a[:, 0], a[:, 1]
    lat, lon = check_latlon(lat, lon, name="anchors")
    if lat.numel() == 0:
        raise ValueError("anchors is empty; give at least one location")
    return lat.to(torch.float64).to(device), lon.to(torch.float64).to(device)


def _decode_anchors(coeffs: Tensor, L: int, radius: float, anchors, max_centres: int = 1024):
    lat, lon = _anchor_tensors(anchors, coeffs.device)
    logits = coeffs @ encode(lat, lon, L).t()  # (B, M)
    share = torch.softmax(logits, dim=1)
    xyz = latlon_to_xyz(lat, lon)
    k = min(max_centres, lat.numel())
    top = share.topk(k, dim=1).indices  # windows centred on the densest anchors
    cos_r = math.cos(radius)
    scores = torch.stack(
        [((xyz[top[b]] @ xyz.t()) >= cos_r).to(share.dtype) @ share[b] for b in range(len(top))]
    )
    best = scores.argmax(1)
    pick = top.gather(1, best[:, None])[:, 0]
    return lat[pick], lon[pick], scores.gather(1, best[:, None])[:, 0]
