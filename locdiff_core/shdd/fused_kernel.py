"""The numba block kernel behind :mod:`locdiff_core.shdd.fused` (imported only when numba is).

Compiled with ``cache=True``: the machine code is kept next to this file (or in numba's user-wide
cache when this folder is read-only), so only the first process on a machine pays the compile.
"""

from __future__ import annotations

import logging
import math

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

_DEG = math.pi / 180.0
_SQRT2 = math.sqrt(2.0)


@intrinsic
def _muladd(typingctx, a, b, c):
    """``a * b + c``, fused into one rounding where the CPU has FMA (LLVM ``llvm.fmuladd``).

    PyTorch's ``addcmul`` (the eager path) compiles to the same fused operation on FMA CPUs, so
    the recurrence rounds exactly as it does there; without FMA both do a multiply and an add
    (``llvm.fma`` would fall back to a slow software routine instead)."""

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.fmuladd", [ty], ir.FunctionType(ty, [ty] * 3))
        return builder.call(fn, args)

    return a(a, b, c), codegen


def _encode_block_range(lat, lon, a, c, ratio, zonal, floor_log2, out, start, stop, block):
    """Writes the encoding of points ``start:stop`` into ``out [(L+1)^2, N]``.

    ``a, c [m, l]``: recurrence constants in the output dtype (``Pbar_lm = (Pbar_(l-1)m x) a -
    Pbar_(l-2)m c``); ``ratio [m]``: float64 ``sqrt((2m+1)/(2m))``, so that ``Pbar_mm =
    Pbar_(m-1)(m-1) ratio[m] sin theta``; ``zonal``: float64 ``Pbar_00``; seeds below
    ``2^floor_log2`` are carried scaled by a power of two kept in ``[2^floor, 2^(floor+1))``, the
    eager path's rule. Points go in blocks of ``block``; for each block the orders run outermost
    so a degree's recurrence state is two arrays of the block's points.
    """
    L = a.shape[0] - 1
    dt = out.dtype
    x = np.empty(2 * block, dt)  # cos theta, twice: for the cos and the sin half of p1, p2
    p1 = np.empty(2 * block, dt)  # Pbar_(l-1)m * (cos m phi | sin m phi), scaled
    p2 = np.empty(2 * block, dt)  # Pbar_(l-2)m * ..., overwritten by Pbar_lm
    unscale = np.empty(2 * block, dt)
    sin_t = np.empty(block, np.float64)
    seed = np.empty(block, np.float64)  # Pbar_mm * 2^shift
    shift = np.empty(block, np.float64)
    turn_re = np.empty(block, np.float64)
    turn_im = np.empty(block, np.float64)
    trig_re = np.empty(block, np.float64)
    trig_im = np.empty(block, np.float64)
    low = math.ldexp(1.0, int(floor_log2))
    high = 2.0 * low
    unscale[0] = zonal
    z = unscale[0]  # Pbar_00 in the output dtype
    for i0 in range(start, stop, block):
        n = min(block, stop - i0)
        nb = (n + 7) // 8 * 8  # whole vectors; padded lanes repeat the last point
        for k in range(nb):
            i = i0 + min(k, n - 1)
            colat = (90.0 - np.float64(lat[i])) * _DEG
            sin_t[k] = abs(math.sin(colat))
            x[k] = math.cos(colat)
            x[nb + k] = x[k]
            phi = np.float64(lon[i]) * _DEG
            turn_re[k] = math.cos(phi)
            turn_im[k] = math.sin(phi)
            trig_re[k] = 1.0
            trig_im[k] = 0.0
            seed[k] = zonal
            shift[k] = 0.0
            unscale[k] = 1.0
            unscale[nb + k] = 1.0
            p1[k] = z
            p2[k] = 0.0
        # Row segments as 1-D views indexed from 0: LLVM then sees contiguous, non-negative
        # indices and stores whole vectors (out[row, i0 + k] would be stored one by one).
        dst = out[0, i0 : i0 + n]
        for k in range(n):
            dst[k] = z
        for l in range(1, L + 1):  # m = 0: never scaled
            al, cl = a[0, l], c[0, l]
            for k in range(nb):
                p2[k] = _muladd(-p2[k], cl, p1[k] * x[k] * al)
            p1, p2 = p2, p1
            dst = out[l * (l + 1), i0 : i0 + n]
            for k in range(n):
                dst[k] = p1[k]
        for m in range(1, L + 1):
            r = ratio[m]
            rescale = 0
            for k in range(nb):
                # cos(m phi) + i sin(m phi) by repeated rotation, like the eager cumprod.
                re = trig_re[k] * turn_re[k] - trig_im[k] * turn_im[k]
                im = trig_re[k] * turn_im[k] + trig_im[k] * turn_re[k]
                trig_re[k] = re
                trig_im[k] = im
                s = seed[k] * sin_t[k] * r
                seed[k] = s
                rescale += (s < low) | ((shift[k] > 0.0) & (s >= high))
            if rescale:  # a separate loop keeps the one above free of calls, so vectorised
                for k in range(nb):
                    # Rescale into [2^floor, 2^(floor+1)) when below it or above it while
                    # scaled: the eager path's shift = max(ceil(floor - log2 Pbar_mm), 0).
                    s = seed[k]
                    if s > 0.0 and (s < low or (shift[k] > 0.0 and s >= high)):
                        step = max(floor_log2 + 1.0 - math.frexp(s)[1], -shift[k])
                        seed[k] = math.ldexp(s, int(step))
                        shift[k] += step
                        unscale[k] = math.ldexp(1.0, -int(shift[k]))
                        unscale[nb + k] = unscale[k]
            for k in range(nb):
                s = seed[k] * _SQRT2
                p1[k] = s * trig_re[k]
                p1[nb + k] = s * trig_im[k]
                p2[k] = 0.0
                p2[nb + k] = 0.0
            for l in range(m, L + 1):
                if l > m:
                    al, cl = a[m, l], c[m, l]
                    for k in range(2 * nb):
                        p2[k] = _muladd(-p2[k], cl, p1[k] * x[k] * al)
                    p1, p2 = p2, p1
                row = l * (l + 1)
                dst = out[row + m, i0 : i0 + n]
                for k in range(n):
                    dst[k] = p1[k] * unscale[k]
                dst = out[row - m, i0 : i0 + n]
                for k in range(n):
                    dst[k] = p1[nb + k] * unscale[nb + k]


_OPTIONS = {"nogil": True, "fastmath": False, "boundscheck": False, "error_model": "numpy"}
try:
    encode_block_range = numba.njit(cache=True, **_OPTIONS)(_encode_block_range)
except RuntimeError as exc:  # no writable cache location at all: compile in each process
    logging.getLogger(__name__).debug("numba cache unavailable, not caching: %s", exc)
    encode_block_range = numba.njit(cache=False, **_OPTIONS)(_encode_block_range)
