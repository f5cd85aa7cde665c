"""The geolocation engines a prediction can come from (torch-free: the app's model layer and
the command line read these names without loading a model).

- ``geoclip``: GeoCLIP's retrieval over its 100K MP16 gallery (Vivanco et al., NeurIPS 2023),
  its trained heads on our CLIP ViT-L/14 backbone; needs no checkpoint of ours.
- ``locdiff``: LocDiffusion (Wang et al., NeurIPS 2025): diffusion over SHDD coefficients and
  the mode-seeking decoder; needs a trained checkpoint.
- ``hybrid``: LocDiff-H (paper Appendix A.4): LocDiffusion's samples narrow the regions, then
  GeoCLIP's retrieval runs only over the gallery points within 200 km of them; needs a
  LocDiffusion checkpoint trained on GeoCLIP's backbone (OpenAI CLIP ViT-L/14).
"""

from __future__ import annotations

from enum import Enum, StrEnum


class Engine(StrEnum):
    GEOCLIP = "geoclip"
    LOCDIFF = "locdiff"
    HYBRID = "hybrid"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def needs_checkpoint(self) -> bool:
        return self is not Engine.GEOCLIP


_LABELS = {
    Engine.GEOCLIP: "GeoCLIP",
    Engine.LOCDIFF: "LocDiffusion",
    Engine.HYBRID: "LocDiff-H (hybrid)",
}

#: GeoCLIP's image backbone, as an image-encoder identity (``locdiff_core.encoder_identity``)
GEOCLIP_BACKBONE = {"name": "ViT-L-14", "pretrained": "openai", "dim": 768}


def on_geoclip_backbone(identity: dict | None) -> bool:
    """Whether embeddings of encoder ``identity`` are what GeoCLIP's head was trained on."""
    if not isinstance(identity, dict):
        return False
    return all(identity.get(k) == v for k, v in GEOCLIP_BACKBONE.items()) and not any(
        identity.get(k) is not None for k in ("config", "weights_sha256", "seed")
    )


def best_engine(has_checkpoint: bool, checkpoint_on_backbone: bool) -> Engine:
    """The default: the hybrid when a LocDiffusion checkpoint on GeoCLIP's backbone is there,
    LocDiffusion for a checkpoint on another encoder, GeoCLIP otherwise."""
    if has_checkpoint:
        return Engine.HYBRID if checkpoint_on_backbone else Engine.LOCDIFF
    return Engine.GEOCLIP


def parse_engine(value: str) -> Engine:
    """The engine named ``value``; a ``ValueError`` naming the choices otherwise."""
    try:
        return Engine(value.strip().lower())
    except ValueError:
        choices = ", ".join(e.value for e in Engine)
        raise ValueError(f"unknown engine {value!r}; choose one of {choices}") from None


class SamplerKind(Enum):
    """The samplers LocDiffusion draws with (:mod:`locdiff_core.diffusion.samplers`): DDPM's
    ancestral steps, or DDIM's deterministic strided ones (Song et al., ICLR 2021)."""

    DDPM = "ddpm"
    DDIM = "ddim"
