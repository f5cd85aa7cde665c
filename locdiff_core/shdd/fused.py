"""Fused CPU path of the SHDD encoding (paper Sec. 4.2, Eq. 10-11): each output value written once.

The eager path (:func:`locdiff_core.shdd.harmonics.encode` on other devices) runs the Legendre
recurrence as three elementwise PyTorch kernels per degree over the whole coefficient-major
buffer, so every value is written and re-read several times and each degree pays the per-op
overhead. Here a numba kernel (:mod:`locdiff_core.shdd.fused_kernel`) computes the same numbers
in one pass:

* the points are split into contiguous ranges, one per thread (``torch.get_num_threads()``, run
  on a small pool of Python threads: the kernel releases the GIL), and each range into blocks of
  4 KiB of values per output row, so every row segment a block writes is one page of consecutive
  values of the coefficient-major ``[(L+1)^2, N]`` output (what ``coeffs @ Y.T`` reads directly);
* within a block the orders run outermost, so the recurrence in ``l`` only keeps the previous
  two degrees of one order, as arrays of the block's points in L1, and the inner loops are plain
  vector loops.

Numerics are the eager path's: float64-derived constants, the cos/sin factor folded into the
sectoral seed, the same operation order including the fused multiply-add of PyTorch's
``addcmul``, and seeds below ``2^floor`` carried with the same per-point, per-order power-of-two
scale (removed as each value is written). One difference: the seed ``s_m sin^m theta`` is built by
multiplying up ``sqrt((2m+1)/(2m)) sin theta`` in float64 rather than as ``exp2`` of its
logarithm (as accurate, and no transcendental call per point and order), so the two paths agree
to rounding, not to the bit.

Without numba (or with ``NUMBA_DISABLE_JIT`` set) :func:`encode_fused` returns ``None`` and the
caller uses the eager path. The first call per dtype in a fresh environment compiles the kernel
(about 2.5 s for float32 and 1.5 s for float64 on the 2-core development VM); the machine code is
then cached on disk, and a later process's first call takes under a second (mostly importing
numba).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from locdiff_core.shdd.recurrence import SCALE_FLOOR_LOG2, recurrence_constants

log = logging.getLogger(__name__)

#: Bytes of one block's output row segment: a page, so each row visit costs one TLB entry.
_BLOCK_BYTES = 4096
#: A call with fewer output values than this per thread runs on fewer threads.
_VALUES_PER_THREAD = 1 << 16
#: Thread ranges start at multiples of this many points (whole cache lines).
_ALIGN_POINTS = 16


@functools.lru_cache(maxsize=1)
def _kernel():
    """The numba kernel, or ``None`` when numba is missing or disabled."""
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        log.debug("NUMBA_DISABLE_JIT is set: SHDD encode uses the eager path")
        return None
    try:
        from locdiff_core.shdd.fused_kernel import encode_block_range
    except Exception as exc:  # ImportError, or a broken install raising anything else
        log.debug("numba unavailable, SHDD encode uses the eager path: %s", exc)
        return None
    return encode_block_range


@functools.lru_cache(maxsize=16)
def _constants(degree: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Order-major ``a, c [m, l]`` in ``dtype``, the float64 seed ratios and ``Pbar_00``."""
    L = degree
    a, c, log2_s = recurrence_constants(L, dtype, "cpu")
    a_ml = a[:, L:].t().contiguous().numpy()
    c_ml = c[:, L:].t().contiguous().numpy()
    m = np.arange(1, L + 1, dtype=np.float64)
    ratio = np.concatenate(([0.0], np.sqrt((2.0 * m + 1.0) / (2.0 * m))))
    return a_ml, c_ml, ratio, math.exp2(float(log2_s[0]))


def _run(kernel, lat: np.ndarray, lon: np.ndarray, degree: int, ranges, block: int) -> np.ndarray:
    """Runs the kernel over the point ``ranges``, the first on this thread, the rest pooled."""
    dtype = torch.float32 if lat.dtype == np.float32 else torch.float64
    a, c, ratio, zonal = _constants(degree, dtype)
    out = np.empty(((degree + 1) ** 2, lat.size), lat.dtype)
    args = (lat, lon, a, c, ratio, zonal, SCALE_FLOOR_LOG2[dtype], out)
    futures = [_executor().submit(kernel, *args, *r, block) for r in ranges[1:]]
    for start, stop in ranges[:1]:
        kernel(*args, start, stop, block)
    for future in futures:
        future.result()
    return out


@functools.lru_cache(maxsize=2)
def _compiled(dtype: torch.dtype):
    """The kernel, compiled (or loaded from the disk cache) for ``dtype``; ``None`` on failure."""
    kernel = _kernel()
    if kernel is None:
        return None
    probe = np.zeros(1, np.float32 if dtype == torch.float32 else np.float64)
    try:
        with warnings.catch_warnings():
            # numba warns when it cannot write its cache (read-only install); it then compiles
            # in each process, which is all the warning says.
            warnings.simplefilter("ignore")
            _run(kernel, probe, probe, 1, [(0, 1)], 8)
    except Exception as exc:  # an LLVM or numba failure must not break encoding
        log.warning("the fused SHDD encoder failed to compile (%s); using the eager path", exc)
        return None
    return kernel


_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """A process-wide pool, rebuilt after ``fork`` (a forked child inherits no threads)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(os.cpu_count() or 1, "shdd-encode"))
        return _pool[1]


def _thread_ranges(num_points: int, num_values: int) -> list[tuple[int, int]]:
    threads = max(1, min(torch.get_num_threads(), num_values // _VALUES_PER_THREAD))
    step = -(-num_points // threads)
    step = max(_ALIGN_POINTS, -(-step // _ALIGN_POINTS) * _ALIGN_POINTS)
    return [(i, min(num_points, i + step)) for i in range(0, num_points, step)]


def encode_fused(lat: Tensor, lon: Tensor, degree: int) -> Tensor | None:
    """``[(L+1)^2, N]`` coefficient-major SHDD encoding of CPU points, or ``None`` without numba.

    ``lat, lon``: 1-D CPU tensors of one dtype, float32 or float64, validated and with wrapped
    longitudes (``check_latlon``); ``degree`` checked (``check_degree``). Uses
    ``torch.get_num_threads()`` threads. No autograd: the result carries no gradient.
    """
    kernel = _compiled(lat.dtype)
    if kernel is None:
        return None
    lat_np = lat.detach().contiguous().numpy()
    lon_np = lon.detach().contiguous().numpy()
    ranges = _thread_ranges(lat_np.size, lat_np.size * (degree + 1) ** 2)
    block = _BLOCK_BYTES // lat_np.itemsize
    return torch.from_numpy(_run(kernel, lat_np, lon_np, degree, ranges, block))
