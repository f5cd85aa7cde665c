"""A GeoCLIP head on a made-up gallery whose probabilities a test chooses."""

import numpy as np
import torch

from locdiff_core.geo import latlon_to_xyz
from locdiff_core.geoclip import GeoCLIPHead
from locdiff_core.geoclip.gallery import Gallery
from locdiff_core.geoclip.model import DIM_BACKBONE, DIM_FEATURE, ImageHead


def identity_head() -> ImageHead:
    """An image head that passes the first 512 (non-negative) features through."""
    head = ImageHead()
    with torch.no_grad():
        head[0].weight.copy_(torch.eye(DIM_BACKBONE))
        head[0].bias.zero_()
        head[2].weight.copy_(torch.eye(DIM_FEATURE, DIM_BACKBONE))
        head[2].bias.zero_()
    return head


def made_up_head(latlon, directions, logit_scale: float = 40.0) -> GeoCLIPHead:
    """Gallery point ``g`` at ``latlon[g]`` with feature ``e_{directions[g]}`` (unit basis)."""
    latlon = np.asarray(latlon, dtype=np.float64)
    features = torch.zeros(len(latlon), DIM_FEATURE)
    features[torch.arange(len(latlon)), torch.as_tensor(directions)] = 1.0
    t = torch.as_tensor(latlon)
    gallery = Gallery(latlon, latlon_to_xyz(t[:, 0], t[:, 1]), features)
    return GeoCLIPHead(identity_head(), logit_scale, gallery)


def raw_feature(weights: dict[int, float]) -> torch.Tensor:
    """A raw backbone feature whose image feature points along ``sum w_d e_d``."""
    raw = torch.zeros(1, DIM_BACKBONE)
    for d, w in weights.items():
        raw[0, d] = w
    return raw


def cluster(lat: float, lon: float, n: int, spread_deg: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    return np.column_stack(
        (
            lat + rng.uniform(-spread_deg, spread_deg, n),
            lon + rng.uniform(-spread_deg, spread_deg, n),
        )
    )
