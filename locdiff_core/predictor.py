"""From image embeddings to locations (paper Sec. 4.6 and Appendix A.8, plus what a user needs).

For every embedding the predictor draws ``K`` latents with the diffusion sampler (paper: 16,
DDPM 100 steps), decodes each with the mode-seeking SHDD decoder, and reports:

- the paper's answer: the geographic centre of the ``K`` decoded points;
- a best guess that survives multimodality (a photo that could be Portugal or Chile must not
  land in the Atlantic), by ``PredictorConfig.best_guess``: the mode of the network's own
  posterior density (``mode``, the default: its one-step estimate from pure noise,
  :func:`locdiff_core.diffusion.posterior_latent`, averaged over ``K`` noise draws and
  decoded with the same decoder; ``K`` network evaluations, against ``K`` times the sampler's
  steps for the samples), or the centre of the densest cluster of samples (``cluster``). On
  held-out photos the mode is much the more accurate (docs/performance.md): the samples
  spread wider than the posterior they come from, and drawing more of them does not help;
- ranked candidates (cluster centres with their share of samples), the radii around the best
  guess that hold 50% and 90% of the samples, the samples themselves, and on request the
  density for display on a grid: the posterior's (the density the best guess is the mode of)
  with ``mode``, the mixture of the samples' SHDD densities with ``cluster``.

Clusters are found greedily: the sample with the most others within ``cluster_radius_km``
(ties: the smallest summed distance to them) seeds a cluster of those samples; they are removed
and the next cluster is sought among the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch
from torch import Tensor

from locdiff_core import shdd
from locdiff_core.checkpoint import CheckpointConfig, load_checkpoint
from locdiff_core.diffusion import (
    GaussianDiffusion,
    SamplerKind,
    make_sampler,
    posterior_latent,
    sample,
)
from locdiff_core.engines import Engine
from locdiff_core.geo import EARTH_RADIUS_KM, angle_between, latlon_to_xyz, xyz_to_latlon
from locdiff_core.nn import CSUNet

_DECODE_CHUNK = 128  # decoded latents per call (bounds the decoder's grid memory)


class BestGuess(Enum):
    MODE = "mode"  # the mode of the network's posterior density (module docstring)
    CLUSTER = "cluster"  # the centre of the densest cluster of samples


@dataclass(frozen=True)
class PredictorConfig:
    num_samples: int = 16  # K (paper: 16)
    sampler: SamplerKind = SamplerKind.DDIM
    num_steps: int | None = None  # default: all T steps for DDPM, 20 for DDIM
    eta: float = 0.0  # DDIM noise (0: deterministic)
    guidance_scale: float = 1.0  # classifier-free guidance (1: off)
    best_guess: BestGuess = BestGuess.MODE
    cluster_radius_km: float = 250.0
    num_candidates: int = 3
    decode_radius_km: float | None = None  # default: shdd.default_radius_km(L)
    batch_size: int = 32  # inputs sampled together
    seed: int | None = 0

    def steps_for(self, num_train_steps: int) -> int:
        if self.num_steps is not None:
            return self.num_steps
        return num_train_steps if self.sampler is SamplerKind.DDPM else min(20, num_train_steps)

    def validate(self) -> None:
        if self.num_samples < 1 or self.batch_size < 1 or self.num_candidates < 1:
            raise ValueError("num_samples, batch_size and num_candidates must be >= 1")
        if not self.cluster_radius_km > 0:
            raise ValueError(f"cluster_radius_km must be positive, got {self.cluster_radius_km}")


@dataclass(frozen=True)
class Candidate:
    lat: float
    lon: float
    share: float  # fraction of the samples (LocDiffusion) or of the probability (GeoCLIP)


@dataclass(frozen=True)
class LocationPrediction:
    """One photo's answer, whichever engine gave it.

    LocDiffusion: ``best`` is the mode of the network's posterior (or, asked for, the centre
    of the densest cluster of samples), ``centre`` the paper's answer (the centre of all
    samples), candidates are the clusters of samples, radii and shares count samples. GeoCLIP and
    the hybrid: ``best`` is the most probable gallery point of the cluster holding the most
    probability, ``centre`` the engine's paper answer (the top gallery point), radii and shares
    count probability; ``samples`` are the most probable gallery points (GeoCLIP) or
    LocDiffusion's samples (hybrid).
    """

    best: tuple[float, float]  # (lat, lon) degrees
    centre: tuple[float, float]  # the paper's answer of the engine
    candidates: tuple[Candidate, ...]  # ranked; the first is the best guess's cluster
    radius50_km: float  # around the best guess, holding half of the samples or probability
    radius90_km: float
    samples: np.ndarray  # (K, 2) lat, lon
    density: np.ndarray | None = None  # (H, W) density per steradian, if asked
    engine: Engine = Engine.LOCDIFF


def _nearest_rank_radius(dist_km: np.ndarray, q: float) -> float:
    k = max(1, math.ceil(q * dist_km.size))
    return float(np.sort(dist_km)[k - 1])


def summarize_samples(
    lat_deg: Tensor,
    lon_deg: Tensor,
    cluster_radius_km: float,
    num_candidates: int,
    best: tuple[float, float] | None = None,
) -> tuple[tuple[float, float], tuple[float, float], tuple[Candidate, ...], float, float]:
    """Best guess, paper centre, candidates and 50/90% radii of ``K`` samples (degrees). The
    best guess is the densest cluster's centre unless ``best`` is given; the radii are around
    the best guess."""
    xyz = latlon_to_xyz(lat_deg.to(torch.float64), lon_deg.to(torch.float64))  # (K, 3)
    K = xyz.shape[0]
    c_lat, c_lon = xyz_to_latlon(xyz.mean(0))
    dist = angle_between(xyz[:, None], xyz[None, :]) * EARTH_RADIUS_KM  # (K, K)
    near = dist <= cluster_radius_km
    remaining = torch.ones(K, dtype=torch.bool)
    candidates = []
    while bool(remaining.any()) and len(candidates) < num_candidates:
        mask = near & remaining[None, :] & remaining[:, None]
        count = mask.sum(1).to(torch.float64)
        spread = torch.where(mask, dist, torch.zeros_like(dist)).sum(1)
        score = torch.where(remaining, count - spread / (cluster_radius_km * K * K + 1), -1.0)
        seed = int(score.argmax())
        members = mask[seed]
        m_lat, m_lon = xyz_to_latlon(xyz[members].mean(0))
        candidates.append(Candidate(float(m_lat), float(m_lon), float(members.sum()) / K))
        remaining &= ~members
    if best is None:
        best = (candidates[0].lat, candidates[0].lon)
    best_xyz = latlon_to_xyz(
        torch.tensor([best[0]], dtype=xyz.dtype), torch.tensor([best[1]], dtype=xyz.dtype)
    )
    to_best = (angle_between(xyz, best_xyz) * EARTH_RADIUS_KM).numpy()
    r50, r90 = _nearest_rank_radius(to_best, 0.5), _nearest_rank_radius(to_best, 0.9)
    return best, (float(c_lat), float(c_lon)), tuple(candidates), r50, r90


class Predictor:
    """Owns a trained CS-UNet and its diffusion process; embeddings in, locations out."""

    def __init__(self, model: CSUNet, config: CheckpointConfig) -> None:
        self.model = model.eval()
        self.config = config
        self.diffusion = GaussianDiffusion(config.diffusion)
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(cls, path, device: str | torch.device = "cpu") -> Predictor:
        model, config = load_checkpoint(path, device)
        return cls(model, config)

    @property
    def degree(self) -> int:
        return self.config.model.degree

    def _check_embeddings(self, embeddings) -> Tensor:
        e = torch.as_tensor(
            np.asarray(embeddings) if not torch.is_tensor(embeddings) else embeddings
        )
        if e.dim() == 1:
            e = e[None]
        dim = self.config.model.dim_cond
        if e.dim() != 2 or e.shape[1] != dim:
            raise ValueError(f"embeddings must have shape [N, {dim}], got {tuple(e.shape)}")
        bad = ~torch.isfinite(e).all(1)
        if bool(bad.any()):
            raise ValueError(f"embedding row {int(bad.nonzero()[0, 0])} contains NaN or inf")
        return e.to(self.device, torch.float32)

    def iter_predict(
        self,
        embeddings,
        config: PredictorConfig = PredictorConfig(),
        *,
        density_size: tuple[int, int] | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[int, LocationPrediction]]:
        """Yields ``(index, prediction)`` batch by batch, in input order.

        ``progress(done, total)`` counts sampler steps over the whole run; ``cancel()``
        returning True stops with :class:`locdiff_core.diffusion.CancelledError`.
        """
        config.validate()
        cond_all = self._check_embeddings(embeddings)
        N, K = cond_all.shape[0], config.num_samples
        steps = config.steps_for(self.config.diffusion.num_steps)
        sampler = make_sampler(config.sampler, self.diffusion, eta=config.eta)
        generator = mode_generator = None
        if config.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(config.seed)
            # The posterior's noise comes from its own stream, so the samples stay as they are.
            mode_generator = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        num_batches = math.ceil(N / config.batch_size)
        total = num_batches * steps
        for b, start in enumerate(range(0, N, config.batch_size)):
            cond = cond_all[start : start + config.batch_size].repeat_interleave(K, dim=0)

            def step_progress(done: int, _n: int, b=b) -> None:
                if progress is not None:
                    progress(b * steps + done, total)

            latent = sample(
                self.model,
                self.diffusion,
                sampler,
                cond,
                num_steps=steps,
                generator=generator,
                guidance_scale=config.guidance_scale,
                progress=step_progress,
                cancel=cancel,
            )
            coeffs = self.diffusion.to_coeffs(latent).to(torch.float64)
            lat, lon = self._decode(coeffs, config.decode_radius_km)
            n = coeffs.shape[0] // K
            modes = posterior_grids = None
            if config.best_guess is BestGuess.MODE:
                modes, posterior = self._modes(cond, K, config, mode_generator)
                if density_size is not None:  # one call for the batch
                    posterior_grids = shdd.density_grid(posterior, *density_size).cpu().numpy()
            for i in range(n):
                rows = slice(i * K, (i + 1) * K)
                best, centre, cands, r50, r90 = summarize_samples(
                    lat[rows], lon[rows], config.cluster_radius_km, config.num_candidates,
                    best=None if modes is None else modes[i],
                )  # fmt: skip
                density = None
                if posterior_grids is not None:
                    density = posterior_grids[i]
                elif density_size is not None:
                    grid = shdd.density_grid(coeffs[rows], *density_size)
                    density = grid.mean(0).cpu().numpy()
                samples = torch.stack((lat[rows], lon[rows]), 1).numpy()
                yield start + i, LocationPrediction(best, centre, cands, r50, r90, samples, density)

    def predict(self, embeddings, config: PredictorConfig = PredictorConfig(), **kwargs):
        """All predictions as a list (see :meth:`iter_predict`)."""
        return [p for _, p in self.iter_predict(embeddings, config, **kwargs)]

    def _modes(
        self, cond: Tensor, K: int, config: PredictorConfig, generator
    ) -> tuple[list[tuple[float, float]], Tensor]:
        """The decoded modes of the network's posterior for ``cond [N * K, C]`` (each input
        repeated ``K`` times), and the posterior's coefficients ``[N, (L+1)^2]`` (float64):
        averaged over the ``K`` noise draws (an input's draws differ a little; their mean is
        steadier than any one of them)."""
        latent = posterior_latent(
            self.model, self.diffusion, cond, generator=generator,
            guidance_scale=config.guidance_scale,
        )  # fmt: skip
        latent = latent.view(-1, K, latent.shape[-1]).mean(1)
        coeffs = self.diffusion.to_coeffs(latent).to(torch.float64)
        lat, lon = self._decode(coeffs, config.decode_radius_km)
        return [(float(a), float(b)) for a, b in zip(lat, lon, strict=True)], coeffs

    def _decode(self, coeffs: Tensor, radius_km: float | None) -> tuple[Tensor, Tensor]:
        lats, lons = [], []
        for i in range(0, coeffs.shape[0], _DECODE_CHUNK):
            lat, lon, _ = shdd.decode(coeffs[i : i + _DECODE_CHUNK], radius_km, with_mass=False)
            lats.append(lat.cpu())
            lons.append(lon.cpu())
        return torch.cat(lats), torch.cat(lons)
