"""GeoCLIP's two small networks (Vivanco et al., NeurIPS 2023, Sec. 3): the image head and the
location encoder, rebuilt so that GeoCLIP's own state dicts load into them unchanged.

- :class:`ImageHead`: Linear 768->768, ReLU, Linear 768->512, applied to the *unnormalised*
  768-d projected CLIP ViT-L/14 feature.
- :class:`LocationEncoder`: the Equal Earth projection of ``(lat, lon)`` (scaled so the map
  spans about [-1, 1]), then three random-Fourier-feature capsules (sigma = 2^0, 2^4, 2^8), each
  an MLP 512->1024->1024->1024->512, their outputs summed.

Both take and return float32 ``[N x ...]`` tensors; the operations follow GeoCLIP's reference
code in the same order, so the features agree with it to float32 rounding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Equal Earth projection (Šavrič, Patterson and Jenny 2018), GeoCLIP's scale factor
_A1, _A2, _A3, _A4 = 1.340264, -0.081106, 0.000893, 0.003796
_SCALE = 66.50336
SIGMAS = (2.0**0, 2.0**4, 2.0**8)
DIM_FEATURE = 512  # GeoCLIP's shared image/location feature width
DIM_BACKBONE = 768  # CLIP ViT-L/14's projected image feature


def equal_earth(latlon: Tensor) -> Tensor:
    """``[N x 2]`` (lat, lon) degrees -> ``[N x 2]`` projected (x, y), about [-1, 1]."""
    lat, lon = torch.deg2rad(latlon[:, 0]), torch.deg2rad(latlon[:, 1])
    root3 = torch.sqrt(torch.tensor(3.0, dtype=latlon.dtype, device=latlon.device))
    theta = torch.asin(root3 / 2 * torch.sin(lat))
    denom = 3 * (9 * _A4 * theta**8 + 7 * _A3 * theta**6 + 3 * _A2 * theta**2 + _A1)
    x = (2 * root3 * lon * torch.cos(theta)) / denom
    y = _A4 * theta**9 + _A3 * theta**7 + _A2 * theta**3 + _A1 * theta
    return (torch.stack((x, y), dim=1) * _SCALE) / 180


class FourierFeatures(nn.Module):
    """``v -> (cos 2 pi B v, sin 2 pi B v)`` with a fixed Gaussian ``B`` ``[256 x 2]``."""

    def __init__(self, sigma: float, dim_in: int = 2, num_features: int = 256) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.randn(num_features, dim_in) * sigma, requires_grad=False)

    def forward(self, v: Tensor) -> Tensor:
        vp = 2 * math.pi * v @ self.b.T
        return torch.cat((torch.cos(vp), torch.sin(vp)), dim=-1)


class LocationCapsule(nn.Module):
    """One scale of the location encoder (state-dict keys ``capsule.*``, ``head.0.*``)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [FourierFeatures(sigma)]
        for dim_in in (512, 1024, 1024):
            layers += [nn.Linear(dim_in, 1024), nn.ReLU()]
        self.capsule = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(1024, DIM_FEATURE))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.capsule(x))


class LocationEncoder(nn.Module):
    """``[N x 2]`` (lat, lon) degrees -> ``[N x 512]`` unnormalised location features."""

    def __init__(self, sigmas: tuple[float, ...] = SIGMAS) -> None:
        super().__init__()
        self.sigmas = sigmas
        for i, sigma in enumerate(sigmas):
            self.add_module(f"LocEnc{i}", LocationCapsule(sigma))

    def forward(self, latlon: Tensor) -> Tensor:
        x = equal_earth(latlon)
        out = torch.zeros(latlon.shape[0], DIM_FEATURE, dtype=x.dtype, device=x.device)
        for i in range(len(self.sigmas)):
            out += self._modules[f"LocEnc{i}"](x)
        return out


class ImageHead(nn.Sequential):
    """``[N x 768]`` raw CLIP ViT-L/14 features -> ``[N x 512]`` unnormalised image features."""

    def __init__(self) -> None:
        super().__init__(
            nn.Linear(DIM_BACKBONE, DIM_BACKBONE), nn.ReLU(), nn.Linear(DIM_BACKBONE, DIM_FEATURE)
        )
