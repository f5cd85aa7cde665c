"""Fast evaluation of ``f = e . Y`` at many points near a few places (decoder and peak work).

Encoding every quadrature node costs ``(L+1)^2`` recurrence steps per point. Near a place of
interest we instead expand ``f`` once and evaluate the expansion:

    f(theta, phi) = sum_m a_m(z) s^(m mod 2) cos(m phi) + b_m(z) s^(m mod 2) sin(m phi)

with ``z = cos(theta)`` and ``s = sin(theta)``. Each ``a_m, b_m`` (the order-``m`` Fourier
coefficient on the ring at ``z``, with the odd orders' factor ``s`` removed) is a polynomial of
degree at most ``L`` in ``z``. On a band ``z_lo <= z <= z_hi`` it is interpolated at Chebyshev
nodes: exact with ``L + 1`` nodes, and to rounding error with far fewer when the band is narrow
(about ``1.5 L w + 12`` nodes for a band of half-width ``w`` radians). Building costs one
Legendre table for the band's rings; a point then costs ``O(n L)`` multiply-adds in two batched
products instead of ``O(L^2)`` recurrence steps, and no ``[(L+1)^2, P]`` buffer is written.

The point's ``z``, ``s`` and ``cos/sin(m phi)`` come straight from its unit vector (the last
from powers of ``(x + i y) / s``), so there is no loss of precision at the poles.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from locdiff_core.geo import xyz_to_latlon
from locdiff_core.shdd.harmonics import encode

#: Extra Chebyshev nodes beyond the band's estimated bandwidth (accuracy to rounding error).
_EXTRA_NODES = 12
#: Points this far outside a band (in units of its half-width) are still evaluated there.
_COVER_TOL = 1e-9


def evaluate_points(coeffs: Tensor, xyz: Tensor, degree: int) -> Tensor:
    """``f`` of row ``k`` of ``coeffs [K, D]`` at its points ``xyz [K, P, 3]`` -> ``[K, P]``,
    by direct encoding (exact anywhere; see :class:`LocalEvaluator` for the fast path)."""
    K, P, _ = xyz.shape
    lat, lon = xyz_to_latlon(xyz.reshape(-1, 3))
    y_t = encode(lat.to(coeffs.dtype), lon.to(coeffs.dtype), degree).t()  # (D, K*P) contiguous
    return torch.bmm(coeffs[:, None, :], y_t.reshape(-1, K, P).permute(1, 0, 2))[:, 0]


@functools.lru_cache(maxsize=32)
def _chebyshev_nodes(n: int, device: str) -> tuple[Tensor, Tensor]:
    """First-kind Chebyshev nodes ``t_i`` and the matrix that maps values to coefficients."""
    i = torch.arange(n, dtype=torch.float64)
    angle = math.pi * (i + 0.5) / n
    t = torch.cos(angle)
    j = torch.arange(n, dtype=torch.float64)
    to_coeffs = (2.0 / n) * torch.cos(angle[:, None] * j[None, :])  # (i, j)
    to_coeffs[:, 0] *= 0.5
    dev = torch.device(device)
    return t.to(dev), to_coeffs.to(dev)


@functools.lru_cache(maxsize=16)
def _order_tables(degree: int, device: str) -> tuple[Tensor, Tensor, Tensor]:
    """Slots ``l(l+1)+m`` with ``m >= 0``, their order ``m`` and the slot of ``(l, -m)``."""
    L, D = degree, (degree + 1) ** 2
    l = torch.arange(L + 1).repeat_interleave(2 * torch.arange(L + 1) + 1)
    m = torch.arange(D) - l * (l + 1)
    slot = torch.arange(D)[m >= 0]
    l, m = l[slot], m[slot]
    dev = torch.device(device)
    return slot.to(dev), m.to(dev), (l * (l + 1) - m).to(dev)


def _ring_fourier(coeffs: Tensor, lat_deg: Tensor, degree: int) -> tuple[Tensor, Tensor]:
    """Fourier coefficients in longitude of ``f`` of row ``k`` on the rings ``lat_deg [K, n]``:
    ``f = sum_m a_m cos(m phi) + b_m sin(m phi)``, returned as ``a, b [K, L+1, n]``.

    At longitude 0 the encoding holds ``c_m Pbar_lm`` in slot ``(l, m >= 0)`` (zero for
    ``m < 0``), so ``a_m`` sums its products with the ``(l, m)`` coefficients and ``b_m`` with
    the ``(l, -m)`` ones (none for ``m = 0``).
    """
    K, n = lat_deg.shape
    slot, order, mirror = _order_tables(degree, str(coeffs.device))
    flat = lat_deg.reshape(-1).to(coeffs.dtype)
    y = encode(flat, torch.zeros_like(flat), degree).t()[slot].reshape(-1, 1, K, n)
    mirrored = torch.where(order > 0, coeffs[:, mirror], torch.zeros_like(coeffs[:, mirror]))
    c = torch.stack((coeffs[:, slot], mirrored)).transpose(1, 2)  # (2, slots, K)
    ab = c.new_zeros(degree + 1, 2, K, n)
    ab.index_add_(0, order, (c[..., None] * y.transpose(0, 1)).transpose(0, 1))
    return ab[:, 0].transpose(0, 1), ab[:, 1].transpose(0, 1)


def num_band_nodes(degree: int, half_width_rad: float) -> int:
    """Chebyshev nodes needed for a band of ``half_width_rad`` (colatitude) at degree ``L``."""
    return max(4, min(degree + 1, math.ceil(1.5 * degree * half_width_rad) + _EXTRA_NODES))


@dataclass
class BandExpansion:
    """``f`` of each row ``k`` on its band of ``z = cos(colatitude)``."""

    centre: Tensor  # (K,) band middle in z
    half: Tensor  # (K,) band half-width in z (> 0)
    series: Tensor  # (K, n, 2(L+1)) Chebyshev coefficients of a_0, b_0, a_1, b_1, ...
    degree: int

    def covers(self, xyz: Tensor, rows: Tensor) -> Tensor:
        """Whether all points ``xyz [K', P, 3]`` of rows ``rows`` lie in their band -> ``[K']``."""
        t = (xyz[..., 2] - self.centre[rows, None]) / self.half[rows, None]
        return (t.abs() <= 1.0 + _COVER_TOL).all(dim=1)

    def evaluate(self, xyz: Tensor, rows: Tensor | None = None) -> Tensor:
        """``f`` at unit vectors ``xyz [K', P, 3]`` of rows ``rows`` (default: all) -> ``[K', P]``.

        Points must lie in their row's band (see :meth:`covers`).
        """
        centre, half, series = self.centre, self.half, self.series
        if rows is not None:
            centre, half, series = centre[rows], half[rows], series[rows]
        K, P, _ = xyz.shape
        L, n = self.degree, series.shape[1]
        x, y, z = xyz.unbind(-1)
        t = ((z - centre[:, None]) / half[:, None]).clamp(-1.0, 1.0)
        j = torch.arange(n, dtype=t.dtype, device=t.device)
        cheb = torch.cos(torch.acos(t)[..., None] * j)  # (K, P, n): T_j(t)
        ab = torch.bmm(cheb, series).view(K, P, L + 1, 2)  # (a_m, b_m) per order
        s = torch.hypot(x, y)
        ab[:, :, 1::2].mul_(s[..., None, None])  # odd orders carry a factor sin(theta)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        turn = torch.complex(torch.where(s > 0, x / safe, 1.0), y / safe)  # e^{i phi}
        powers = turn[..., None].expand(K, P, L + 1).clone()
        powers[..., 0] = 1.0
        powers = torch.view_as_real(powers.cumprod_(-1))  # (K, P, L+1, 2): cos, sin of m phi
        return (ab * powers).sum((-2, -1))


def band_expansion(coeffs: Tensor, degree: int, z_lo: Tensor, z_hi: Tensor) -> BandExpansion:
    """Expand each row of ``coeffs [K, D]`` on the band ``[z_lo[k], z_hi[k]]``.

    Differentiable in ``coeffs``; the band itself carries no gradient.
    """
    dt, dev = coeffs.dtype, coeffs.device
    L, K = degree, coeffs.shape[0]
    z_lo, z_hi = z_lo.detach().to(dt), z_hi.detach().to(dt)
    half = ((z_hi - z_lo) / 2).clamp_min(1e-15)
    centre = (z_hi + z_lo) / 2
    width = float((torch.acos(z_lo.clamp(-1, 1)) - torch.acos(z_hi.clamp(-1, 1))).max()) / 2
    n = num_band_nodes(L, width) if K else 4
    t, to_coeffs = _chebyshev_nodes(n, str(dev))
    z = (centre[:, None] + half[:, None] * t.to(dt)).clamp(-1.0, 1.0)  # (K, n)
    a, b = _ring_fourier(coeffs, torch.rad2deg(torch.asin(z)), L)  # (K, L+1, n)
    s = torch.sqrt((1.0 - z * z).clamp_min(0.0))  # interior nodes: s > 0 unless z = +-1
    odd = (torch.arange(L + 1, device=dev) % 2 == 1)[None, :, None]
    s_safe = torch.where(s > 0, s, torch.ones_like(s))[:, None, :]
    a = torch.where(odd, a / s_safe, a)
    b = torch.where(odd, b / s_safe, b)
    values = torch.stack((a, b), dim=2).reshape(K, 2 * (L + 1), n)  # interleaved a_m, b_m
    series = (values @ to_coeffs.to(dt)).transpose(1, 2)  # (K, n, 2(L+1))
    return BandExpansion(centre=centre, half=half, series=series.contiguous(), degree=L)


def cap_band(centre: Tensor, reach: Tensor) -> tuple[Tensor, Tensor]:
    """The ``z`` band ``[z_lo, z_hi]`` holding every point within ``reach [K]`` rad of
    ``centre [K, 3]``."""
    theta = torch.atan2(torch.hypot(centre[:, 0], centre[:, 1]), centre[:, 2])
    lo = (theta - reach).clamp(min=0.0)
    hi = (theta + reach).clamp(max=math.pi)
    return torch.cos(hi), torch.cos(lo)


class LocalEvaluator:
    """Evaluates ``f`` of rows of ``coeffs [K, D]`` near ``centre [K, 3]`` (within ``reach``).

    Calls for points outside a row's band fall back to direct evaluation for that row, so the
    result is always exact; the expansion only makes the common case fast.
    """

    def __init__(self, coeffs: Tensor, degree: int, centre: Tensor, reach: Tensor) -> None:
        self.coeffs, self.degree = coeffs, degree
        z_lo, z_hi = cap_band(centre.to(coeffs.dtype), reach.to(coeffs.dtype))
        self.band = band_expansion(coeffs, degree, z_lo, z_hi)

    def __call__(self, xyz: Tensor, rows: Tensor | None = None) -> Tensor:
        """``f`` at ``xyz [K', P, 3]`` of rows ``rows`` (default: all rows) -> ``[K', P]``."""
        if rows is None:
            rows = torch.arange(self.coeffs.shape[0], device=xyz.device)
        xyz = xyz.to(self.coeffs.dtype)
        ok = self.band.covers(xyz, rows)
        if bool(ok.all()):
            return self.band.evaluate(xyz, rows)
        out = torch.empty(xyz.shape[:2], dtype=self.coeffs.dtype, device=xyz.device)
        if bool(ok.any()):
            out[ok] = self.band.evaluate(xyz[ok], rows[ok])
        out[~ok] = evaluate_points(self.coeffs[rows[~ok]], xyz[~ok], self.degree)
        return out
