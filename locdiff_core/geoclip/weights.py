"""GeoCLIP's trained files (Vivanco et al., NeurIPS 2023), as the ``geoclip`` wheel installs them.

The wheel holds the image head (``image_encoder_mlp_weights.pth``: Linear 768->768, ReLU,
Linear 768->512), the location encoder (``location_encoder_weights.pth``), the logit scale
(``logit_scale_weights.pth``) and the 100K MP16 gallery (``coordinates_100K.csv``). They are
found through the package's installed metadata, so the ``geoclip`` module itself (which imports
transformers and pandas) is never imported. Every file is checked against the sha256 its wheel
records (``RECORD``) before it is read, and the ``.pth`` files are read with
``torch.load(weights_only=True)``, which unpickles tensors only, never code.

``GeoCLIPFiles.from_folder`` reads the same layout from a folder instead (a copy made by hand
on a machine without the wheel).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from locdiff_core.photo.safe_io import sha256_of

DISTRIBUTION = "geoclip"
_FILES = {
    "image_head": "model/weights/image_encoder_mlp_weights.pth",
    "location_encoder": "model/weights/location_encoder_weights.pth",
    "logit_scale": "model/weights/logit_scale_weights.pth",
    "gallery": "model/gps_gallery/coordinates_100K.csv",
}
_INSTALL_HINT = "install it with `pip install geoclip` (the wheel carries GeoCLIP's weights)"


class GeoCLIPFilesError(FileNotFoundError):
    """GeoCLIP's files are missing or damaged; the message names the file and the fix."""


@dataclass(frozen=True)
class GeoCLIPFiles:
    """The four files of a GeoCLIP release and their sha256 digests."""

    image_head: Path
    location_encoder: Path
    logit_scale: Path
    gallery: Path
    sha256: dict  # field name -> hex digest, checked when the files were found

    @classmethod
    def installed(cls) -> GeoCLIPFiles:
        """The files of the installed ``geoclip`` wheel, each checked against its RECORD."""
        try:
            dist = importlib.metadata.distribution(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            message = f"the GeoCLIP package is not installed; {_INSTALL_HINT}"
            raise GeoCLIPFilesError(message) from None
        recorded = {str(f): f for f in dist.files or ()}
        paths, digests = {}, {}
        for field, rel in _FILES.items():
            entry = recorded.get(f"geoclip/{rel}")
            if entry is None:
                raise GeoCLIPFilesError(
                    f"the installed geoclip {dist.version} has no geoclip/{rel}; reinstall it "
                    "(`pip install --force-reinstall geoclip`)"
                )
            path = Path(dist.locate_file(entry))
            digests[field] = _check_recorded(path, entry.hash)
            paths[field] = path
        return cls(**paths, sha256=digests)

    @classmethod
    def from_folder(cls, folder: str | Path) -> GeoCLIPFiles:
        """The files under ``folder`` in the wheel's layout (``model/weights/...``)."""
        folder = Path(folder)
        paths = {field: folder / rel for field, rel in _FILES.items()}
        for path in paths.values():
            if not path.is_file():
                raise GeoCLIPFilesError(
                    f"{path}: missing; a GeoCLIP folder holds {', '.join(_FILES.values())}"
                )
        return cls(**paths, sha256={k: sha256_of(p) for k, p in paths.items()})

    def state_dict(self, field: str) -> dict[str, torch.Tensor] | torch.Tensor:
        """The tensors of ``image_head``, ``location_encoder`` or ``logit_scale``."""
        path = getattr(self, field)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle, zip and format errors of a damaged file
            raise GeoCLIPFilesError(
                f"{path}: not a readable tensor file ({type(exc).__name__}: {exc}); reinstall "
                "geoclip"
            ) from exc

    def gallery_coordinates(self) -> np.ndarray:
        """``(G, 2)`` float64 latitude, longitude of the gallery (header ``LAT,LON``)."""
        path = self.gallery
        try:
            with open(path, encoding="utf-8") as fh:
                header = [h.strip().upper() for h in fh.readline().split(",")]
                table = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise GeoCLIPFilesError(f"{path}: not a readable gallery CSV ({exc})") from exc
        if "LAT" not in header or "LON" not in header or table.shape[1] != len(header):
            raise GeoCLIPFilesError(f"{path}: a gallery CSV has the columns LAT,LON")
        coords = table[:, [header.index("LAT"), header.index("LON")]]
        bad = ~((np.abs(coords[:, 0]) <= 90) & (np.abs(coords[:, 1]) <= 180))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise GeoCLIPFilesError(f"{path}: row {row + 2} is not a latitude, longitude pair")
        return coords

    @property
    def key(self) -> str:
        """One digest of all four files (names the cached gallery features)."""
        joined = "".join(self.sha256[k] for k in sorted(self.sha256))
        return hashlib.sha256(joined.encode()).hexdigest()


def _check_recorded(path: Path, recorded) -> str:
    """``path``'s sha256, after checking it against the wheel's RECORD entry."""
    if not path.is_file():
        raise GeoCLIPFilesError(f"{path}: missing from the installed geoclip; reinstall it")
    digest = sha256_of(path)
    if recorded is not None and recorded.mode == "sha256":
        expected = base64.urlsafe_b64decode(recorded.value + "=" * (-len(recorded.value) % 4))
        if expected.hex() != digest:
            raise GeoCLIPFilesError(
                f"{path}: its sha256 {digest[:16]}… differs from the one geoclip's wheel "
                "records; the file is damaged or was changed, reinstall geoclip "
                "(`pip install --force-reinstall geoclip`)"
            )
    return digest
