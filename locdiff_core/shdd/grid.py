"""Fast evaluation of SHDD log-densities on latitude rings (equiangular grids).

On a ring of constant colatitude, ``f(phi) = sum_lm e_lm Y_lm`` is a trigonometric polynomial in
``phi``: per ring we contract the coefficients with the ring's Legendre values (one batched
matmul over orders ``m``) and an inverse real FFT does all longitudes at once. For a grid of
``R`` rings and ``C`` columns this costs ``R (L+1)^2 + R C log C`` per density instead of the
``R C (L+1)^2`` of a dense matmul against encoded grid points.

The cell-centred equiangular grid doubles as a quadrature rule: Fejér's first rule in
``cos(theta)`` times the trapezoidal rule in longitude integrates every polynomial of degree
``< R`` in ``cos(theta)`` and every trigonometric polynomial of degree ``< C`` in ``phi`` exactly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from locdiff_core.shdd.harmonics import encode


@dataclass(frozen=True)
class EquiangularGrid:
    """Cell-centred ``num_lat x num_lon`` grid; row 0 is the northernmost ring, column 0 starts
    at longitude -180."""

    num_lat: int
    num_lon: int

    def __post_init__(self) -> None:
        if self.num_lat < 2 or self.num_lon < 3:
            raise ValueError(f"grid needs num_lat >= 2 and num_lon >= 3, got {self}")

    @property
    def spacing_rad(self) -> float:
        return math.pi / self.num_lat

    def lat_deg(self, dtype=torch.float64, device=None) -> Tensor:
        i = torch.arange(self.num_lat, dtype=torch.float64, device=device)
        return (90.0 - (i + 0.5) * 180.0 / self.num_lat).to(dtype)

    def lon_deg(self, dtype=torch.float64, device=None) -> Tensor:
        j = torch.arange(self.num_lon, dtype=torch.float64, device=device)
        return (-180.0 + (j + 0.5) * 360.0 / self.num_lon).to(dtype)

    def latlon(self, dtype=torch.float64, device=None) -> tuple[Tensor, Tensor]:
        """Grid node coordinates, each ``[num_lat, num_lon]``."""
        lat = self.lat_deg(dtype, device)[:, None].expand(self.num_lat, self.num_lon)
        lon = self.lon_deg(dtype, device)[None, :].expand(self.num_lat, self.num_lon)
        return lat, lon

    def weights(self, dtype=torch.float64, device=None) -> Tensor:
        """Quadrature weights ``[num_lat, 1]`` (steradian per node; they sum to 4 pi)."""
        return _fejer_weights(self.num_lat, self.num_lon, dtype, str(device or "cpu"))


@functools.lru_cache(maxsize=32)
def _fejer_weights(num_lat: int, num_lon: int, dtype: torch.dtype, device: str) -> Tensor:
    n = num_lat
    theta = (torch.arange(n, dtype=torch.float64) + 0.5) * math.pi / n
    j = torch.arange(1, n // 2 + 1, dtype=torch.float64)
    terms = torch.cos(2.0 * j[None, :] * theta[:, None]) / (4.0 * j * j - 1.0)
    w = (2.0 / n) * (1.0 - 2.0 * terms.sum(1))
    return (w * (2.0 * math.pi / num_lon))[:, None].to(dtype=dtype, device=torch.device(device))


@functools.lru_cache(maxsize=4)
def _ring_table(degree: int, lat_key: tuple[float, ...], dtype: torch.dtype, device: str) -> Tensor:
    lat = torch.tensor(lat_key, dtype=torch.float64)
    return ring_legendre(lat, degree).to(dtype=dtype, device=torch.device(device))


def ring_legendre(lat_deg: Tensor, degree: int) -> Tensor:
    """``[m, l, ring]`` table of ``c_m Pbar_lm`` (``c_0 = 1``, else ``sqrt 2``), zero for l < m.

    Reuses :func:`encode` at longitude 0, where every ``Y_lm`` with ``m >= 0`` equals
    ``c_m Pbar_lm``, so there is a single Legendre recurrence in the code base.
    """
    L = degree
    y = encode(lat_deg, torch.zeros_like(lat_deg), L)  # (R, D)
    table = torch.zeros(L + 1, L + 1, lat_deg.numel(), dtype=y.dtype, device=y.device)
    idx_l, idx_m = _lm_lower(L, y.device)
    table[idx_m, idx_l] = y[:, idx_l * (idx_l + 1) + idx_m].t()
    return table


@functools.lru_cache(maxsize=16)
def _lm_lower_cached(degree: int, device: str) -> tuple[Tensor, Tensor]:
    l, m = torch.tril_indices(degree + 1, degree + 1)
    return l.to(device), m.to(device)


def _lm_lower(degree: int, device) -> tuple[Tensor, Tensor]:
    return _lm_lower_cached(degree, str(device))


def ring_coefficients(coeffs: Tensor, degree: int) -> tuple[Tensor, Tensor]:
    """Split ``[B, (L+1)^2]`` into cos and sin parts ``[B, m, l]`` (zero where ``l < m``)."""
    B = coeffs.shape[0]
    L = degree
    l, m = _lm_lower(L, coeffs.device)
    cos_c = coeffs.new_zeros(B, L + 1, L + 1)
    sin_c = coeffs.new_zeros(B, L + 1, L + 1)
    cos_c[:, m, l] = coeffs[:, l * (l + 1) + m]
    pos = m > 0
    sin_c[:, m[pos], l[pos]] = coeffs[:, l[pos] * (l[pos] + 1) - m[pos]]
    return cos_c, sin_c


def evaluate_rings(coeffs: Tensor, degree: int, lat_deg: Tensor, num_lon: int) -> Tensor:
    """``f = coeffs . Y`` on rings at ``lat_deg`` and ``num_lon`` cell-centred longitudes starting
    at -180 degrees: ``[B, len(lat_deg), num_lon]``. Differentiable in ``coeffs``."""
    L = degree
    if num_lon <= 2 * L:
        raise ValueError(f"num_lon must exceed 2 * degree = {2 * L} to resolve every order")
    key = tuple(float(v) for v in lat_deg.detach().cpu().to(torch.float64))
    table = _ring_table(L, key, coeffs.dtype, str(coeffs.device))  # (m, l, R)
    cos_c, sin_c = ring_coefficients(coeffs, L)  # (B, m, l)
    a = torch.matmul(cos_c.transpose(0, 1), table).transpose(0, 1)  # (B, m, R)
    b = torch.matmul(sin_c.transpose(0, 1), table).transpose(0, 1)
    # f(phi) = sum_m a_m cos(m phi) + b_m sin(m phi) = Re sum_m (a_m - i b_m) e^{i m phi};
    # column j sits at phi_j = phi_0 + 2 pi j / C with phi_0 = -pi + pi / C.
    m = torch.arange(L + 1, dtype=torch.float64, device=coeffs.device)
    phase = torch.polar(torch.ones_like(m), m * (-math.pi + math.pi / num_lon))
    spec = torch.complex(a, -b) * phase.to(torch.complex(a, b).dtype)[None, :, None]
    spec = spec * torch.where(m == 0, 1.0, 0.5).to(a.dtype)[None, :, None]
    spec = spec.transpose(1, 2)  # (B, R, m)
    return torch.fft.irfft(spec, n=num_lon, dim=-1, norm="forward")


def evaluate_grid(coeffs: Tensor, degree: int, grid: EquiangularGrid) -> Tensor:
    """``f`` on every node of ``grid``: ``[B, num_lat, num_lon]``."""
    return evaluate_rings(coeffs, degree, grid.lat_deg(), grid.num_lon)


def disc_sums(values: Tensor, grid: EquiangularGrid, radius_rad: float) -> Tensor:
    """Sum of ``values [B, R, C]`` over the grid nodes within ``radius_rad`` of each node.

    Exact for the node set (a node counts when its great-circle distance is at most the
    radius); per ring pair it takes a longitude window from a cumulative sum, so the cost is
    ``O(B R C k)`` with ``k`` the rings within the radius.
    """
    B, R, C = values.shape
    colat = torch.deg2rad(90.0 - grid.lat_deg(torch.float64, values.device))
    dphi = 2.0 * math.pi / C
    span = math.ceil(radius_rad / grid.spacing_rad + 1e-9)
    padded = torch.cat((values, values, values), dim=-1)  # wrap in longitude
    csum = torch.nn.functional.pad(padded.cumsum(-1), (1, 0))  # (B, R, 3C + 1)
    out = torch.zeros_like(values)
    cols = torch.arange(C, device=values.device)
    cos_r = math.cos(radius_rad)
    for k in range(-span, span + 1):
        first, last = max(0, -k), min(R, R - k)  # rows whose ring ``row + k`` exists
        if first >= last:
            continue
        rows, src = slice(first, last), slice(first + k, last + k)
        ti, tj = colat[rows], colat[src]
        num = cos_r - torch.cos(ti) * torch.cos(tj)
        den = torch.sin(ti) * torch.sin(tj)
        ratio = num / den
        half = torch.where(
            ratio <= -1.0,
            torch.full_like(ratio, math.pi),
            torch.acos(ratio.clamp(-1.0, 1.0)),
        )
        half = torch.where(ratio > 1.0, torch.full_like(ratio, -1.0), half)
        n = torch.floor(half / dphi + 1e-9).to(torch.long)  # columns each side
        n = torch.minimum(n, torch.full_like(n, (C - 1) // 2))
        full = half >= math.pi
        lo = (cols[None, :] - n[:, None] + C).clamp(0, 3 * C)  # (r, C) in padded coords
        hi = (cols[None, :] + n[:, None] + C + 1).clamp(0, 3 * C)
        part = csum[:, src]
        seg = part.gather(-1, hi.expand(B, -1, -1)) - part.gather(-1, lo.expand(B, -1, -1))
        seg.mul_((n >= 0).to(seg.dtype)[None, :, None])
        if bool(full.any()):
            seg = torch.where(full[None, :, None], values[:, src].sum(-1, keepdim=True), seg)
        out[:, rows] += seg
    return out
