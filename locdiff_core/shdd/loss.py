"""Training losses in SHDD space (paper Sec. 4.3, Eq. 13 and 17; Table 7 ablation).

The paper's SHDD-KL compares, on random anchor points ``a_i``, the predicted density
``q_i = softmax_i(e . Y(a_i))`` with the target ``p_i = softmax_i(encode(p) . Y(a_i))`` and
returns ``KL(q || p)``, all in the log domain (log-softmax, never ``exp`` of raw logits).

Known flaw: the target's peak is ``~45,000 / (L+1)^2`` km wide while 2048 uniform anchors are
~500 km apart, so for ``L >= 23`` all of ``p`` falls on the nearest anchor and the loss cannot
see anything finer than the anchor spacing. :attr:`KLEstimator.IMPORTANCE` adds anchors drawn
around the true location (a mixture of tangent-plane Gaussians whose scales span the target's
width) and weights every anchor by ``1 / g(a_i)``, the mixture's density: a self-normalised
importance-sampling estimate of the same continuous KL that resolves the target's peak. With
only uniform anchors it reduces exactly to the paper's estimator.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from locdiff_core.geo import (
    angle_between,
    check_latlon,
    exp_map,
    latlon_to_xyz,
    tangent_frame,
    uniform_points,
)
from locdiff_core.shdd.density import check_coeffs, kernel_sigma_rad
from locdiff_core.shdd.harmonics import encode, zonal_kernel
from locdiff_core.shdd.local import LocalEvaluator


class KLEstimator(enum.Enum):
    UNIFORM = "uniform"  # the paper's: fresh uniform anchors shared by the batch
    IMPORTANCE = "importance"  # plus anchors around each target, importance-weighted


class KLDirection(enum.Enum):
    PRED_TO_TARGET = "pred_to_target"  # KL(q_e || p_true), the paper's
    TARGET_TO_PRED = "target_to_pred"  # KL(p_true || q_e)


#: Local anchor scales as multiples of the target's peak width.
_LOCAL_SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)


def _targets(pred: Tensor, lat_deg, lon_deg) -> tuple[Tensor, Tensor, int]:
    pred, L = check_coeffs(pred, name="pred_coeffs")
    lat, lon = check_latlon(lat_deg, lon_deg, name="targets")
    if lat.numel() != pred.shape[0]:
        raise ValueError(
            f"pred_coeffs has {pred.shape[0]} rows but {lat.numel()} target locations were given"
        )
    return lat.to(torch.float64).to(pred.device), lon.to(torch.float64).to(pred.device), L


@dataclass(frozen=True)
class AnchorDraws:
    """The random numbers behind the KL's anchors, drawn before the loss is computed.

    A distributed trainer draws them for the whole global batch from one seeded generator and
    gives every process its rows (:meth:`rows`), so an example's anchors do not depend on which
    process computes it.
    """

    uniform_lat: Tensor  # (M,) degrees, shared by the batch
    uniform_lon: Tensor  # (M,)
    local_pick: Tensor | None = None  # (B, K) int64: which of the local scales
    local_xy: Tensor | None = None  # (B, K, 2) float64 standard normal tangent offsets

    def rows(self, idx: Tensor) -> AnchorDraws:
        """The draws of rows ``idx`` (the uniform anchors stay shared)."""
        if self.local_pick is None or self.local_xy is None:
            return self
        return AnchorDraws(
            self.uniform_lat, self.uniform_lon, self.local_pick[idx], self.local_xy[idx]
        )


def draw_anchors(
    batch: int,
    num_anchors: int,
    *,
    estimator: KLEstimator | str = KLEstimator.UNIFORM,
    num_local: int = 256,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> AnchorDraws:
    """Anchor draws for a batch of ``batch`` rows (what :func:`kl_loss` draws itself when
    given none; same generator order)."""
    if num_anchors < 1:
        raise ValueError(f"num_anchors must be >= 1, got {num_anchors}")
    a_lat, a_lon = uniform_points(num_anchors, device=device, generator=generator)
    if KLEstimator(estimator) is not KLEstimator.IMPORTANCE:
        return AnchorDraws(a_lat, a_lon)
    if num_local < 1:
        raise ValueError(f"num_local must be >= 1 for the importance estimator, got {num_local}")
    pick = torch.randint(len(_LOCAL_SCALES), (batch, num_local), generator=generator, device=device)
    xy = torch.randn(batch, num_local, 2, dtype=torch.float64, generator=generator, device=device)
    return AnchorDraws(a_lat, a_lon, pick, xy)


def _local_anchors(target_xyz: Tensor, pick: Tensor, xy: Tensor, scale: float) -> Tensor:
    """``[B, K, 3]`` anchors from the mixture of tangent-plane Gaussians."""
    scales = torch.tensor(_LOCAL_SCALES, dtype=torch.float64, device=target_xyz.device) * scale
    xy = xy.to(target_xyz.device) * scales[pick.to(target_xyz.device)][..., None]
    e1, e2 = tangent_frame(target_xyz)
    return exp_map(target_xyz[:, None], e1[:, None], e2[:, None], xy[..., 0], xy[..., 1])


def _log_proposal(anchor_xyz: Tensor, target_xyz: Tensor, frac_uniform: float, scale: float):
    """log g(a) per steradian for the uniform + Gaussian-mixture proposal, ``[B, M]``."""
    r = angle_between(anchor_xyz, target_xyz[:, None])
    scales = torch.tensor(_LOCAL_SCALES, dtype=torch.float64, device=r.device) * scale
    # Planar Gaussian mapped by the exponential map: area factor r / sin r.
    jac = torch.where(r > 1e-12, r / torch.sin(r).clamp_min(1e-300), torch.ones_like(r))
    log_gauss = (
        -0.5 * (r[..., None] / scales) ** 2
        - torch.log(2 * math.pi * scales**2)
        - math.log(len(_LOCAL_SCALES))
    )
    log_local = torch.logsumexp(log_gauss, -1) + torch.log(jac)
    log_local = torch.where(r < math.pi - 1e-6, log_local, torch.full_like(r, -math.inf))
    parts = [torch.full_like(r, math.log(frac_uniform / (4 * math.pi)))]
    if frac_uniform < 1.0:
        parts.append(log_local + math.log(1.0 - frac_uniform))
    return torch.logsumexp(torch.stack(parts), 0)


def kl_loss(
    pred_coeffs: Tensor,
    lat_deg,
    lon_deg,
    num_anchors: int = 2048,
    *,
    estimator: KLEstimator | str = KLEstimator.UNIFORM,
    direction: KLDirection | str = KLDirection.PRED_TO_TARGET,
    num_local: int = 256,
    generator: torch.Generator | None = None,
    draws: AnchorDraws | None = None,
) -> Tensor:
    """SHDD-KL between predicted densities and the SHDD of the true locations, ``[B]``.

    Args:
        pred_coeffs: ``[B, (L+1)^2]`` predicted SHDD vectors.
        lat_deg, lon_deg: ``[B]`` true locations.
        num_anchors: fresh uniform anchors drawn per call (shared by the batch).
        estimator: ``UNIFORM`` (paper) or ``IMPORTANCE`` (adds ``num_local`` anchors per row
            around its target; resolves the target below the anchor spacing).
        direction: ``PRED_TO_TARGET`` = ``KL(q_e || p_true)`` (paper) or the reverse.
        generator: optional ``torch.Generator`` for reproducible anchors.
        draws: the anchors' random numbers, drawn by the caller (:func:`draw_anchors`); when
            given, ``generator`` is not used and ``num_anchors``/``num_local`` must match them.
    """
    estimator = KLEstimator(estimator)
    direction = KLDirection(direction)
    if num_anchors < 1:
        raise ValueError(f"num_anchors must be >= 1, got {num_anchors}")
    lat, lon, L = _targets(pred_coeffs, lat_deg, lon_deg)
    pred = pred_coeffs if pred_coeffs.dim() == 2 else pred_coeffs[None]
    dtype, dev = pred.dtype, pred.device
    if draws is None:
        draws = draw_anchors(
            len(lat),
            num_anchors,
            estimator=estimator,
            num_local=num_local,
            generator=generator,
            device=dev,
        )
    else:
        _check_draws(draws, len(lat), num_anchors, estimator, num_local)
    a_lat, a_lon = draws.uniform_lat.to(dev), draws.uniform_lon.to(dev)
    a_xyz = latlon_to_xyz(a_lat, a_lon)  # (M, 3) float64
    t_xyz = latlon_to_xyz(lat, lon)  # (B, 3)
    pred_logits = pred @ encode(a_lat.to(dtype), a_lon.to(dtype), L).t()  # (B, M)
    # The target's logits depend on the angle alone (addition theorem): no encoding needed.
    target_logits = zonal_kernel(t_xyz @ a_xyz.t(), L).to(dtype)
    log_w = None
    if estimator is KLEstimator.IMPORTANCE:
        scale = kernel_sigma_rad(L)
        local = _local_anchors(t_xyz, draws.local_pick, draws.local_xy, scale)  # (B, K, 3)
        reach = angle_between(local, t_xyz[:, None]).amax(1)
        f_local = LocalEvaluator(pred, L, t_xyz.to(dtype), reach)(local.to(dtype))
        pred_logits = torch.cat((pred_logits, f_local), 1)
        t_local = zonal_kernel((local * t_xyz[:, None]).sum(-1), L).to(dtype)
        target_logits = torch.cat((target_logits, t_local), 1)
        a_all = torch.cat((a_xyz.expand(len(lat), -1, -1), local), 1)
        frac = num_anchors / (num_anchors + num_local)
        log_w = (-_log_proposal(a_all, t_xyz, frac, scale)).to(dtype)
    return _discrete_kl(pred_logits, target_logits, log_w, direction)


def _check_draws(
    draws: AnchorDraws, batch: int, num_anchors: int, estimator: KLEstimator, num_local: int
) -> None:
    if draws.uniform_lat.numel() != num_anchors:
        raise ValueError(
            f"draws hold {draws.uniform_lat.numel()} uniform anchors but num_anchors is "
            f"{num_anchors}; draw them with the same num_anchors"
        )
    if estimator is KLEstimator.IMPORTANCE:
        if draws.local_xy is None or draws.local_pick is None:
            raise ValueError(
                "the importance estimator needs local anchor draws; draw them with "
                "draw_anchors(..., estimator='importance')"
            )
        if tuple(draws.local_xy.shape) != (batch, num_local, 2):
            raise ValueError(
                f"local anchor draws have shape {tuple(draws.local_xy.shape)}, the batch needs "
                f"{(batch, num_local, 2)}; slice the draws with .rows(idx) for each batch"
            )


def _discrete_kl(pred_logits, target_logits, log_w, direction: KLDirection) -> Tensor:
    """Self-normalised KL on anchors with log importance weights ``log_w`` (None: uniform)."""
    if log_w is not None:
        pred_logits = pred_logits + log_w
        target_logits = target_logits + log_w
    log_q = torch.log_softmax(pred_logits, dim=1)
    log_p = torch.log_softmax(target_logits, dim=1)
    # With weights folded into both logits, log_q - log_p is the log-ratio of the densities
    # (the weights cancel) and softmax(logits) are the self-normalised importance weights.
    if direction is KLDirection.PRED_TO_TARGET:
        return (log_q.exp() * (log_q - log_p)).sum(1)
    return (log_p.exp() * (log_p - log_q)).sum(1)


def cosine_loss(pred_coeffs: Tensor, lat_deg, lon_deg) -> Tensor:
    """``1 - cos(pred, encode(p))`` per row, ``[B]`` (paper Table 7 ablation)."""
    lat, lon, L = _targets(pred_coeffs, lat_deg, lon_deg)
    pred = pred_coeffs if pred_coeffs.dim() == 2 else pred_coeffs[None]
    target = encode(lat.to(pred.dtype), lon.to(pred.dtype), L)
    return 1.0 - torch.nn.functional.cosine_similarity(pred, target, dim=1)


def mse_loss(pred_coeffs: Tensor, lat_deg, lon_deg) -> Tensor:
    """Mean squared error to ``encode(p)`` per row, ``[B]`` (paper Table 7 ablation)."""
    lat, lon, L = _targets(pred_coeffs, lat_deg, lon_deg)
    pred = pred_coeffs if pred_coeffs.dim() == 2 else pred_coeffs[None]
    target = encode(lat.to(pred.dtype), lon.to(pred.dtype), L)
    return ((pred - target) ** 2).mean(1)
