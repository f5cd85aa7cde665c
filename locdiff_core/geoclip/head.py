"""GeoCLIP's retrieval head on our image backbone (GeoCLIP Sec. 3.3): raw CLIP ViT-L/14
features in, :class:`~locdiff_core.predictor.LocationPrediction` out.

For a photo with raw 768-d feature ``f``, the probability of gallery location ``g`` is
``softmax_g(s * <n(MLP(f)), n(LocEnc(g))>)`` with GeoCLIP's learnt logit scale ``s`` and ``n`` the
unit-length normalisation. ``mask`` restricts the softmax to some gallery points (the hybrid).

From those probabilities a prediction reports the top gallery point (GeoCLIP's own answer, as
``centre``), clusters of the most probable points (greedy: the point with the most probability
within ``cluster_radius_km`` seeds a cluster of the points around it; each candidate is its
cluster's most probable point, with the cluster's probability), the best guess (the first
candidate), the radii around it that hold 50% and 90% of the probability, and on request the
probabilities spread on the display grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from locdiff_core.engines import Engine
from locdiff_core.geo import EARTH_RADIUS_KM
from locdiff_core.geoclip.gallery import Gallery, gallery_density, load_or_encode
from locdiff_core.geoclip.model import DIM_BACKBONE, ImageHead, LocationEncoder
from locdiff_core.geoclip.weights import GeoCLIPFiles
from locdiff_core.predictor import Candidate, LocationPrediction

_CLUSTER_MASS = 0.999  # clusters are sought among the top points holding this much probability
_CLUSTER_POINTS = 256  # ... but at most this many
_RADIUS_BINS = 4096  # distance bins of the 50/90% radii search


@dataclass(frozen=True)
class RetrievalConfig:
    cluster_radius_km: float = 250.0
    num_candidates: int = 3
    num_points: int = 16  # most probable gallery points kept as the prediction's samples
    batch_size: int = 256  # photos scored against the gallery together (100 MB of logits)

    def validate(self) -> None:
        if self.num_candidates < 1 or self.num_points < 1 or self.batch_size < 1:
            raise ValueError("num_candidates, num_points and batch_size must be >= 1")
        if not self.cluster_radius_km > 0:
            raise ValueError(f"cluster_radius_km must be positive, got {self.cluster_radius_km}")


class GeoCLIPHead:
    """GeoCLIP's image head, logit scale and encoded gallery."""

    def __init__(
        self, image_head: ImageHead, logit_scale: float, gallery: Gallery, files_key: str = ""
    ) -> None:
        self.image_head = image_head.eval().requires_grad_(False)
        self.logit_scale = float(logit_scale)  # exp of the stored log-scale
        self.gallery = gallery
        self.files_key = files_key
        self.device = next(image_head.parameters()).device
        self._features = gallery.features.to(self.device)
        self._features_np = gallery.features.numpy() if self.device.type == "cpu" else None

    @classmethod
    def load(
        cls,
        files: GeoCLIPFiles | None = None,
        *,
        device: str | torch.device = "cpu",
        cache_dir: Path | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> GeoCLIPHead:
        """GeoCLIP's trained head from ``files`` (default: the installed wheel's). The gallery
        features come from the cache, or are encoded once (``progress(points, total)``)."""
        files = files or GeoCLIPFiles.installed()
        head = ImageHead()
        head.load_state_dict(files.state_dict("image_head"), strict=True)
        encoder = LocationEncoder()
        encoder.load_state_dict(files.state_dict("location_encoder"), strict=True)
        scale = files.state_dict("logit_scale")
        if not torch.is_tensor(scale) or scale.numel() != 1:
            raise ValueError(f"{files.logit_scale}: holds no scalar logit scale")
        gallery = load_or_encode(
            encoder.eval().to(device),
            files.gallery_coordinates(),
            files.key,
            cache_dir=cache_dir,
            progress=progress,
            cancel=cancel,
        )
        return cls(head.to(device), math.exp(float(scale)), gallery, files.key)

    def _check(self, raw) -> Tensor:
        x = torch.as_tensor(np.asarray(raw) if not torch.is_tensor(raw) else raw)
        x = x[None] if x.dim() == 1 else x
        if x.dim() != 2 or x.shape[1] != DIM_BACKBONE:
            raise ValueError(
                f"GeoCLIP takes raw {DIM_BACKBONE}-d CLIP ViT-L/14 features [N, {DIM_BACKBONE}], "
                f"got {tuple(x.shape)}"
            )
        return x.to(self.device, torch.float32)

    @torch.inference_mode()
    def image_features(self, raw) -> Tensor:
        """``[N x 512]`` unit image features of raw backbone features ``[N x 768]``."""
        return torch.nn.functional.normalize(self.image_head(self._check(raw)), dim=1)

    @torch.inference_mode()
    def logits(self, raw) -> Tensor:
        """``[N x G]`` float32 logits of every gallery point."""
        image = self.image_features(raw)
        if self.device.type != "cpu":
            return self.logit_scale * (image @ self._features.T)
        # On the CPU, numpy's OpenBLAS: PyTorch's x86 wheels multiply with MKL, which took
        # 2.3 times as long for this shape on the AMD EPYC we measure on (docs/performance.md)
        out = image.numpy() @ self._features_np.T
        out *= np.float32(self.logit_scale)
        return torch.from_numpy(out)

    def predict(
        self,
        raw,
        config: RetrievalConfig = RetrievalConfig(),
        *,
        masks: Tensor | None = None,
        density_size: tuple[int, int] | None = None,
        engine: Engine = Engine.GEOCLIP,
    ) -> list[LocationPrediction | None]:
        """One prediction per row of ``raw`` (``[N x 768]``); with ``masks`` (``[N x G]`` bool)
        only the gallery points marked count, and a row with none marked gives ``None``."""
        config.validate()
        raw = self._check(raw)
        out: list[LocationPrediction | None] = []
        for start in range(0, raw.shape[0], config.batch_size):
            logits = self.logits(raw[start : start + config.batch_size])
            empty = torch.zeros(logits.shape[0], dtype=torch.bool)
            if masks is not None:
                block = masks[start : start + config.batch_size].to(logits.device)
                logits = logits.masked_fill(~block, -math.inf)
                empty = ~block.any(1).cpu()
            probs = torch.softmax(logits, dim=1).cpu()  # float32, as GeoCLIP's own code
            num_top = min(probs.shape[1], max(config.num_points, _CLUSTER_POINTS))
            tops = torch.topk(probs, num_top, dim=1).indices.numpy()  # most probable first
            probs = probs.numpy()

            def summarize(i: int, probs=probs, tops=tops) -> LocationPrediction:
                row = probs[i].astype(np.float64)
                row /= row.sum()  # float32 rounding must not let a share pass 1
                return summarize_probabilities(
                    row, self.gallery, config, density_size, engine, tops[i]
                )

            rows = [i for i, none in enumerate(empty.tolist()) if not none]
            done = {i: summarize(i) for i in rows}
            out += [done.get(i) for i in range(len(probs))]
        return out


def summarize_probabilities(
    probs: np.ndarray,
    gallery: Gallery,
    config: RetrievalConfig,
    density_size: tuple[int, int] | None = None,
    engine: Engine = Engine.GEOCLIP,
    top: np.ndarray | None = None,
) -> LocationPrediction:
    """A prediction from gallery probabilities ``probs`` (``(G,)`` float64, summing to 1);
    ``top``, when given, holds the indices of the most probable points, most probable first."""
    if top is None:
        num_top = min(len(probs), max(config.num_points, _CLUSTER_POINTS))
        top = np.argpartition(-probs, num_top - 1)[:num_top]
    top = top[np.lexsort((top, -probs[top]))]  # most probable first; ties by gallery order
    mass = np.cumsum(probs[top])
    keep = max(config.num_points, int(np.searchsorted(mass, _CLUSTER_MASS * mass[-1])) + 1)
    top = top[:keep]
    cos_r = math.cos(config.cluster_radius_km / EARTH_RADIUS_KM)
    seeds, picks = _cluster_seeds(probs, top, gallery.xyz_np, cos_r, config.num_candidates)
    cos = gallery.xyz_np[[*seeds, picks[0]]] @ gallery.xyz_t  # (candidates + 1, G): one pass
    claimed = np.zeros(len(probs), dtype=bool)
    candidates = []
    for j, pick in enumerate(picks):  # a share: what no earlier candidate claimed
        around = (cos[j] >= cos_r) & ~claimed
        lat, lon = gallery.latlon[pick]
        candidates.append(Candidate(float(lat), float(lon), float(probs[around].sum())))
        claimed |= around
    r50, r90 = _mass_radii(probs, cos[-1])
    centre = (float(gallery.latlon[top[0], 0]), float(gallery.latlon[top[0], 1]))
    samples = gallery.latlon[top[: config.num_points]].copy()
    density = None
    if density_size is not None:
        density = gallery_density(probs, gallery.latlon, density_size)
    best = (candidates[0].lat, candidates[0].lon)
    return LocationPrediction(
        best, centre, tuple(candidates), r50, r90, samples, density, engine=engine
    )


def _cluster_seeds(
    probs: np.ndarray, top: np.ndarray, xyz: np.ndarray, cos_r: float, num: int
) -> tuple[list[int], list[int]]:
    """Gallery indices of up to ``num`` cluster seeds among the ``top`` points (each the free
    point with the most free probability within the radius), and of each cluster's most
    probable point."""
    near = (xyz[top] @ xyz[top].T) >= cos_r  # (M, M)
    weights = near.astype(np.float64)
    live = probs[top].copy()
    seeds: list[int] = []
    picks: list[int] = []
    while live.any() and len(seeds) < num:
        within = weights @ live
        within[live == 0] = -1.0
        seed = int(within.argmax())
        members = near[seed] & (live > 0)
        picks.append(int(top[int(np.where(members, live, -1.0).argmax())]))
        seeds.append(int(top[seed]))
        live[near[seed]] = 0.0
    return seeds, picks


def _mass_radii(probs: np.ndarray, cos_to_centre: np.ndarray) -> tuple[float, float]:
    """The smallest distances (km) from the centre within which 50% and 90% of ``probs`` lie
    (``cos_to_centre``: each point's cosine of the angle to it), found in linear time: a
    histogram of ``(1 - cos d) / 2`` (which grows with the distance ``d``) names the bin where
    each share is reached, and only that bin's points are sorted."""
    half_chord2 = (1.0 - cos_to_centre) * 0.5  # in [0, 1]
    bins = (half_chord2 * _RADIUS_BINS).astype(np.int32)  # int32: a third of int64's time
    np.minimum(bins, _RADIUS_BINS - 1, out=bins)
    hist = np.cumsum(np.bincount(bins, weights=probs, minlength=_RADIUS_BINS))
    radii = []
    for q in (0.5, 0.9):
        b = min(int(np.searchsorted(hist, q * hist[-1])), _RADIUS_BINS - 1)
        inside = np.flatnonzero(bins == b)
        order = inside[np.argsort(half_chord2[inside], kind="stable")]
        before = hist[b - 1] if b else 0.0
        k = min(
            int(np.searchsorted(before + np.cumsum(probs[order]), q * hist[-1])), len(order) - 1
        )
        h = float(np.clip(half_chord2[order[k]], 0.0, 1.0))
        radii.append(2.0 * math.asin(math.sqrt(h)) * EARTH_RADIUS_KM)
    return radii[0], radii[1]
