"""GeoCLIP's location gallery and its encoded features, computed once and kept on disk.

Retrieval (GeoCLIP Sec. 3.3) compares an image feature with the features of every gallery
location (100K MP16 coordinates). Encoding the gallery costs about half a minute on a laptop
CPU, so it is done once per set of GeoCLIP files and cached as a float32 ``.npy`` file of unit
rows named by the files' digest (:attr:`GeoCLIPFiles.key`). A cache that cannot be read, or
whose shape or values are wrong, is computed again; it is written atomically.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from locdiff_core.atomic_file import atomic_write
from locdiff_core.diffusion import CancelledError
from locdiff_core.display_grid import cell_areas
from locdiff_core.encoder_weights import default_cache_dir
from locdiff_core.geo import latlon_to_xyz
from locdiff_core.geoclip.model import DIM_FEATURE, LocationEncoder

CACHE_FORMAT = 1
_ENCODE_CHUNK = 4096
log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Gallery:
    """Gallery locations with their unit features."""

    latlon: np.ndarray  # (G, 2) float64 degrees
    xyz: torch.Tensor  # (G, 3) float64 unit vectors
    features: torch.Tensor  # (G, 512) float32 unit rows

    @property
    def xyz_np(self) -> np.ndarray:
        return self.xyz.numpy()

    @functools.cached_property
    def xyz_t(self) -> np.ndarray:
        """``(3, G)`` the unit vectors as contiguous rows (fast products with a few points)."""
        return np.ascontiguousarray(self.xyz.numpy().T)

    @functools.cached_property
    def lat_order(self) -> np.ndarray:
        """``(G,)`` indices that sort the points by latitude."""
        return np.argsort(self.latlon[:, 0], kind="stable")

    def __len__(self) -> int:
        return int(self.latlon.shape[0])


def cache_path(key: str, cache_dir: Path | None = None) -> Path:
    """Where the features of the GeoCLIP files with digest ``key`` are cached."""
    folder = Path(cache_dir or default_cache_dir()) / "geoclip"
    return folder / f"gallery-features-v{CACHE_FORMAT}-{key[:24]}.npy"


@torch.inference_mode()
def encode_gallery(
    encoder: LocationEncoder,
    latlon: np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """``(G, 512)`` float32 unit features of ``latlon`` (``(G, 2)`` degrees)."""
    points = torch.as_tensor(latlon, dtype=torch.float32)  # GeoCLIP encodes float32 degrees
    out = np.empty((points.shape[0], DIM_FEATURE), np.float32)
    device = next(encoder.parameters()).device
    for start in range(0, points.shape[0], _ENCODE_CHUNK):
        if cancel is not None and cancel():
            raise CancelledError("encoding the GeoCLIP gallery was cancelled")
        chunk = encoder(points[start : start + _ENCODE_CHUNK].to(device))
        out[start : start + chunk.shape[0]] = torch.nn.functional.normalize(chunk, dim=1).cpu()
        if progress is not None:
            progress(min(start + _ENCODE_CHUNK, len(out)), len(out))
    return out


def load_or_encode(
    encoder: LocationEncoder,
    latlon: np.ndarray,
    key: str,
    *,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Gallery:
    """The gallery with its features: from the cache when it holds them, else encoded now and
    cached (a cache folder that cannot be written only costs the encoding next time)."""
    path = cache_path(key, cache_dir)
    features = _read_cache(path, latlon.shape[0])
    if features is None:
        features = encode_gallery(encoder, latlon, progress=progress, cancel=cancel)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as fh:
                np.save(fh, features, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("%s: the gallery features could not be cached (%s)", path, exc)
    xyz = latlon_to_xyz(*torch.as_tensor(latlon, dtype=torch.float64).unbind(1))
    return Gallery(latlon, xyz, torch.from_numpy(features))


def _read_cache(path: Path, num_points: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        log.warning("%s: unreadable gallery cache, encoding again (%s)", path, exc)
        return None
    norms = np.linalg.norm(features, axis=1) if features.ndim == 2 else None
    if (
        features.shape != (num_points, DIM_FEATURE)
        or features.dtype != np.float32
        or not np.all(np.abs(norms - 1) < 1e-3)
    ):
        log.warning("%s: the gallery cache does not fit the gallery, encoding again", path)
        return None
    return features


def gallery_density(probs: np.ndarray, latlon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` density per steradian of gallery probabilities on the display grid (row 0 the
    north, column 0 at -180 degrees, as :func:`locdiff_core.shdd.density_grid`), each point's
    mass spread over its cell and the eight around it (weights 1-2-1 in each direction)."""
    height, width = size
    row = np.clip(((90.0 - latlon[:, 0]) * height / 180.0).astype(np.int64), 0, height - 1)
    col = np.clip(((latlon[:, 1] + 180.0) * width / 360.0).astype(np.int64), 0, width - 1)
    mass = np.bincount(row * width + col, weights=probs, minlength=height * width)
    mass = mass.reshape(height, width)
    mass = (np.roll(mass, 1, 1) + 2 * mass + np.roll(mass, -1, 1)) / 4  # longitude wraps
    padded = np.pad(mass, ((1, 1), (0, 0)), mode="edge")  # keeps the mass at the poles
    mass = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
    return (mass / cell_areas(height, width)).astype(np.float32)
