"""A generated conditional geolocation task for tests and benchmarks (no downloads).

Locations cluster like photos do (uneven clusters around random centres, plus a little
background everywhere). Each location's "embedding" is a smooth, noisy function of it: random
Fourier features of its unit vector plus Gaussian noise, L2-normalised like CLIP embeddings.
The noise and the features' periodicity make the map impossible to invert by lookup; a model
has to learn where embeddings like this one come from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from locdiff_core.geo import (
    EARTH_RADIUS_KM,
    exp_map,
    latlon_to_xyz,
    tangent_frame,
    uniform_points,
    xyz_to_latlon,
)


@dataclass(frozen=True)
class SyntheticTask:
    dim_cond: int = 64
    num_clusters: int = 12
    cluster_km: float = 300.0
    background: float = 0.05  # share of locations uniform on the sphere
    frequency: float = 3.0  # of the random Fourier features (per radian)
    noise: float = 0.3  # relative to the features' amplitude
    seed: int = 0

    def _features(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        w = rng.normal(0.0, self.frequency, size=(3, self.dim_cond))
        b = rng.uniform(0.0, 2 * math.pi, size=self.dim_cond)
        return w, b

    def locations(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` clustered locations (lat, lon degrees)."""
        gen = torch.Generator().manual_seed(self.seed)
        c_lat, c_lon = uniform_points(self.num_clusters, generator=gen)
        weights = torch.distributions.Dirichlet(torch.full((self.num_clusters,), 2.0)).sample()
        g = torch.Generator().manual_seed(seed)
        pick = torch.multinomial(weights, n, replacement=True, generator=g)

        centre = latlon_to_xyz(c_lat, c_lon)[pick]
        e1, e2 = tangent_frame(centre)
        xy = torch.randn(n, 2, generator=g, dtype=torch.float64) * (
            self.cluster_km / EARTH_RADIUS_KM
        )
        lat, lon = xyz_to_latlon(exp_map(centre, e1, e2, xy[:, 0], xy[:, 1]))
        u_lat, u_lon = uniform_points(n, generator=g)
        bg = torch.rand(n, generator=g) < self.background
        lat, lon = torch.where(bg, u_lat, lat), torch.where(bg, u_lon, lon)
        return lat.numpy(), lon.numpy()

    def embed(self, lat: np.ndarray, lon: np.ndarray, seed: int) -> np.ndarray:
        """Noisy features ``(n, dim_cond)`` float32, unit length."""
        w, b = self._features()
        la, lo = np.deg2rad(lat), np.deg2rad(lon)
        u = np.stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)), axis=1)
        feats = np.cos(u @ w + b)
        feats += np.random.default_rng(seed).normal(0.0, self.noise, size=feats.shape)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True)
        return feats.astype(np.float32)

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(embedding, lat, lon)`` of ``n`` fresh examples."""
        lat, lon = self.locations(n, seed)
        return self.embed(lat, lon, seed + 1), lat, lon
