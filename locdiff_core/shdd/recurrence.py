"""The constants of the normalised associated Legendre recurrence, shared by the torch
implementation (:mod:`locdiff_core.shdd.harmonics`) and the fused CPU kernel
(:mod:`locdiff_core.shdd.fused`), which must agree to the last bit.

The sectoral seeds ``Pbar_mm = s_m sin^m theta`` underflow float32 near the poles at high
degree; seeds smaller than ``2**SCALE_FLOOR_LOG2[dtype]`` are carried scaled up and unscaled
after the recurrence (the harmonics module's docstring gives the scheme).
"""

from __future__ import annotations

import functools
import math

import torch

#: Seeds smaller than 2**floor are carried scaled.
SCALE_FLOOR_LOG2 = {torch.float32: -100.0, torch.float64: -900.0}


@functools.lru_cache(maxsize=16)
def recurrence_constants(degree: int, dtype: torch.dtype, device: str):
    """Float64-derived constants for the mirrored order layout ``j = m + L``.

    Returns ``a, c`` of shape ``(L + 1, 2L + 1)`` with
    ``Pbar_lm = a[l] * x * Pbar_(l-1)m - c[l] * Pbar_(l-2)m`` for ``|m| < l`` and the log2 of
    the sectoral normalisation ``s_m`` with ``Pbar_mm = s_m sin^m theta``.
    """
    L = degree
    l = torch.arange(L + 1, dtype=torch.float64)[:, None]
    m = torch.arange(-L, L + 1, dtype=torch.float64).abs()[None, :]
    valid = m < l
    num_a = 4.0 * l * l - 1.0
    den_a = torch.where(valid, l * l - m * m, torch.ones_like(l * m))
    a = torch.where(valid, torch.sqrt(num_a / den_a), torch.zeros(()))
    num_b = ((l - 1.0) ** 2 - m * m).clamp_min(0.0)
    den_b = (4.0 * (l - 1.0) ** 2 - 1.0).abs().clamp_min(1.0)
    b = torch.where(valid, torch.sqrt(num_b / den_b), torch.zeros(()))
    c = a * b
    k = torch.arange(1, L + 1, dtype=torch.float64)
    log2_s = torch.cat(
        (
            torch.tensor([-0.5 * math.log2(4.0 * math.pi)], dtype=torch.float64),
            -0.5 * math.log2(4.0 * math.pi)
            + 0.5 * torch.cumsum(torch.log2((2 * k + 1) / (2 * k)), 0),
        )
    )
    dev = torch.device(device)
    return a.to(dtype=dtype, device=dev), c.to(dtype=dtype, device=dev), log2_s.to(device=dev)
