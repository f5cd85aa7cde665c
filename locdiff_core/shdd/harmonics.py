"""Real orthonormal spherical harmonics, the SHDD location encoding (paper Sec. 4.2, Eq. 10-11).

Convention
----------
A location ``(lat, lon)`` in degrees maps to colatitude ``theta = 90° - lat`` and azimuth
``phi = lon``. For degree ``l`` and order ``-l <= m <= l`` the real harmonic is::

    Y_l0        = Pbar_l0(cos theta)
    Y_lm  (m>0) = sqrt(2) * Pbar_lm(cos theta) * cos(m phi)
    Y_l-m (m>0) = sqrt(2) * Pbar_lm(cos theta) * sin(m phi)

where ``Pbar_lm`` are the associated Legendre functions normalised so that every ``Y_lm`` has unit
L2 norm on the unit sphere (integral of ``Y_lm Y_l'm'`` over the sphere is ``delta_ll' delta_mm'``)
and **without** the Condon-Shortley phase ``(-1)^m``. In terms of scipy's complex harmonics
``Y_l^m`` (which carry that phase): ``Y_lm = sqrt(2) (-1)^m Re Y_l^m`` and
``Y_l-m = sqrt(2) (-1)^m Im Y_l^m`` for ``m > 0``. Coefficient ``(l, m)`` sits at index
``l * (l + 1) + m``, so degree ``L`` gives ``(L + 1)^2`` values.

Numerics
--------
``Pbar_lm`` comes from the standard stable recurrences of fully normalised Legendre functions
(sectoral seed, then the three-term recurrence in ``l`` for every order ``m`` at once), with every
recurrence constant precomputed in float64 and no factorials. Because the ``l``-recurrence is
linear for a fixed ``m``, the cos/sin factor is folded into each order's seed, so the recurrence
writes the output blocks directly. The sectoral seed ``Pbar_mm ~ sin^m theta`` underflows float32
long before the values it seeds become negligible (``sin(30°)^150 = 2^-150``); seeds below
``2^-100`` (float64: ``2^-900``) are therefore carried with a per-point, per-order power-of-two
scale that is removed when a block is final. Growth along ``l`` is bounded by about
``0.53 L`` bits, so float32 stays finite and accurate to ``L = 200`` and float64 to several
thousand.

Two implementations
-------------------
On the CPU, :func:`encode` runs the fused numba kernel of :mod:`locdiff_core.shdd.fused` (one
pass per block of points, each value written once, same numerics). :func:`encode_eager` below,
the recurrence as eager PyTorch ops, serves CUDA, installs without numba, and the tests as the
fused kernel's reference. Neither carries a gradient: locations are data, and ``encode`` refuses
inputs that require grad with a ValueError.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from locdiff_core.geo import check_latlon
from locdiff_core.shdd import fused
from locdiff_core.shdd.recurrence import SCALE_FLOOR_LOG2, recurrence_constants

_MAX_DEGREE = {torch.float32: 200, torch.float64: 2000}
_CHUNK_ELEMENTS = 1 << 23  # values per CPU chunk: big enough for both cores, small for cache


def num_coefficients(degree: int) -> int:
    """Length ``(L + 1)^2`` of an SHDD vector of degree ``L``."""
    return (degree + 1) ** 2


def degree_of(num_coeffs: int) -> int:
    """Degree ``L`` of an SHDD vector with ``num_coeffs`` values; ``ValueError`` if not square."""
    root = math.isqrt(int(num_coeffs))
    if num_coeffs < 1 or root * root != num_coeffs:
        lo, hi = max(root, 1) ** 2, (root + 1) ** 2
        raise ValueError(
            f"an SHDD vector has (L+1)^2 values, but got {num_coeffs} "
            f"(nearest valid lengths: {lo} for L={max(root, 1) - 1}, {hi} for L={root})"
        )
    return root - 1


def check_degree(degree: int, dtype: torch.dtype = torch.float64) -> int:
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
        raise ValueError(f"degree must be a non-negative int, got {degree!r}")
    limit = _MAX_DEGREE.get(dtype, 2000)
    if degree > limit:
        raise ValueError(
            f"degree {degree} exceeds the supported maximum {limit} for {dtype}; "
            "use float64 inputs for higher degrees"
        )
    return degree


def _seeds(lat: Tensor, lon: Tensor, degree: int, dtype: torch.dtype):
    """Sectoral seeds ``Pbar_mm`` (scaled) times their cos/sin factor.

    Returns ``(zonal [N], cos_part [L, N], sin_part [L, N], unscale)``: row ``m - 1`` of the
    parts seeds order ``+m`` and ``-m``; ``unscale [2L+1, N]`` (mirrored order ``j = m + L``) is
    the power-of-two factor to remove, or ``None`` when no seed needed scaling.
    """
    L = degree
    _, _, log2_s = recurrence_constants(L, dtype, str(lat.device))
    colat = torch.deg2rad(90.0 - lat.to(torch.float64))
    sin_t = torch.sin(colat).abs()
    m = torch.arange(1, L + 1, dtype=torch.float64, device=lat.device)[:, None]
    log2_sin = torch.log2(sin_t).clamp_min(-1e4)  # exact poles: sin = 0, seeds vanish
    t = log2_s[1:, None] + m * log2_sin  # (L, N): log2 |Pbar_mm|
    shift = (SCALE_FLOOR_LOG2[dtype] - t).ceil_().clamp_min_(0.0)
    seed = torch.exp2(t + shift).mul_(math.sqrt(2.0))
    # cos(m phi) + i sin(m phi) by repeated rotation: error grows like m * eps, no trig calls.
    turn = torch.polar(torch.ones_like(colat), torch.deg2rad(lon.to(torch.float64)))
    trig = turn.expand(L, -1).cumprod(0)
    cos_part = (seed * trig.real).to(dtype)
    sin_part = (seed * trig.imag).to(dtype)
    zonal = torch.full_like(lat, math.exp2(float(log2_s[0])), dtype=dtype)
    if L == 0 or not bool((shift > 0).any()):
        return zonal, cos_part, sin_part, None
    unscale = torch.exp2(-shift)  # underflows to 0 exactly where the true values do
    ones = torch.ones_like(unscale[:1])
    unscale = torch.cat((unscale.flip(0), ones, unscale), dim=0).to(dtype)
    return zonal, cos_part, sin_part, unscale


def _encode_chunk(lat: Tensor, lon: Tensor, degree: int, dtype: torch.dtype, work: Tensor) -> None:
    """Writes ``encode`` of one chunk of points, coefficient-major, into ``work [(L+1)^2, N]``."""
    L = degree
    a, c, _ = recurrence_constants(L, dtype, str(lat.device))
    zonal, cos_part, sin_part, unscale = _seeds(lat, lon, L, dtype)
    x = torch.cos(torch.deg2rad(90.0 - lat.to(torch.float64))).to(dtype)[None, :]
    work[0] = zonal

    def block(l: int) -> Tensor:
        return work[l * l : (l + 1) * (l + 1)]

    def descale(l: int) -> None:
        if unscale is not None and l >= 0:
            block(l).mul_(unscale[L - l : L + l + 1])

    for l in range(1, L + 1):
        new = block(l)
        inner = new[1 : 2 * l]
        torch.mul(block(l - 1), x, out=inner)
        inner.mul_(a[l, L - l + 1 : L + l, None])
        if l >= 2:
            inner[1:-1].addcmul_(block(l - 2), c[l, L - l + 2 : L + l - 1, None], value=-1.0)
        new[0] = sin_part[l - 1]
        new[2 * l] = cos_part[l - 1]
        descale(l - 2)
    descale(L - 1)
    descale(L)


def encode(lat_deg, lon_deg, degree: int) -> Tensor:
    """SHDD encoding: real orthonormal spherical harmonics ``Y_lm(lat, lon)`` for ``l <= degree``.

    Args:
        lat_deg, lon_deg: ``[N]`` (or scalar) latitudes and longitudes in degrees; longitudes are
            wrapped. Tensors keep their device; float32 and float64 keep their dtype (other
            floating types are computed in float32 and cast back; Python numbers give float64).
        degree: the band limit ``L``.

    Returns:
        ``[N, (L+1)^2]`` with coefficient ``(l, m)`` at index ``l*(l+1)+m``. The result is the
        transposed view of a coefficient-major ``[(L+1)^2, N]`` buffer (what the recurrence
        writes fastest and what ``coeffs @ Y.T`` reads directly); call ``.contiguous()`` if you
        need point-major storage.
    """
    lat, lon = check_latlon(lat_deg, lon_deg)
    if lat.requires_grad or lon.requires_grad:
        raise ValueError(
            "shdd.encode has no gradient (its recurrence writes into one buffer): the "
            "locations must not require grad; pass lat.detach() and lon.detach()"
        )
    out_dtype = lat.dtype
    dtype = torch.float64 if out_dtype == torch.float64 else torch.float32
    check_degree(degree, dtype)
    lat, lon = lat.to(dtype), lon.to(dtype)
    work = None
    if lat.device.type == "cpu":
        work = fused.encode_fused(lat, lon, degree)  # None without numba
    if work is None:
        work = encode_eager(lat, lon, degree)
    return work.t().to(out_dtype)


def encode_eager(lat: Tensor, lon: Tensor, degree: int) -> Tensor:
    """The recurrence as eager PyTorch ops: ``[(L+1)^2, N]`` coefficient-major.

    Used on CUDA (and any non-CPU device), without numba, and as the tests' reference for the
    fused CPU kernel; no gradient flows through it. ``lat, lon``: 1-D tensors of one
    dtype, float32 or float64, validated and wrapped (``check_latlon``).
    """
    dtype = lat.dtype
    N = lat.numel()
    work = torch.empty((degree + 1) ** 2, N, dtype=dtype, device=lat.device)
    chunk = N if lat.is_cuda else max(256, _CHUNK_ELEMENTS // (degree + 1) ** 2)
    for i in range(0, N, chunk):
        _encode_chunk(lat[i : i + chunk], lon[i : i + chunk], degree, dtype, work[:, i : i + chunk])
    return work


def zonal_kernel(cos_angle: Tensor, degree: int) -> Tensor:
    """``encode(p) . encode(u) = sum_l (2l+1)/(4 pi) P_l(cos angle)`` for ``l <= degree``.

    The addition theorem gives the SHDD logit of a location's own encoding at any point from
    the angle alone; the Legendre recurrence in ``l`` is stable for ``|x| <= 1``. Computed in
    float64 and returned in float64 (shape of ``cos_angle``).
    """
    x = cos_angle.to(torch.float64).clamp(-1.0, 1.0)
    prev, cur = torch.ones_like(x), x
    total = torch.full_like(x, 1.0) + (3.0 * x if degree >= 1 else 0.0)
    for l in range(1, degree):
        prev, cur = cur, ((2 * l + 1) * x * cur - l * prev) / (l + 1)
        total.add_(cur, alpha=2 * l + 3)
    return total / (4.0 * math.pi)
