"""GeoCLIP's own reference code, run with the image-backbone weights of one of our towers.

A test helper (no tests here). The installed ``geoclip`` package encodes photos with Hugging
Face's ``CLIPModel`` and its ``CLIPImageProcessor``; we use open_clip's ``VisionTransformer``
(:mod:`locdiff_core.image_encoder`). :func:`reference_geoclip` builds the reference with GeoCLIP's
released MLP, location-encoder and logit-scale weights (they ship in the wheel) and a CLIP whose
vision part carries the weights of an open_clip tower (:func:`hf_state_from_open_clip`), so a
test can compare our reimplementation with the reference on one random backbone, offline.

Both sides use QuickGELU: Hugging Face's ``CLIPVisionConfig`` defaults to ``quick_gelu`` (checked
by :func:`reference_geoclip`), and :func:`quick_gelu_encoder` builds the tower the way the
``openai`` tag of ViT-L-14 is built (``_build_tower`` of ``_architecture("ViT-L-14", "openai")``,
whose tag config says ``quick_gelu``), not :meth:`ImageEncoder.random_init`, which uses GELU.

Costs on a 2-core CPU: building the reference takes ~13 s; encoding GeoCLIP's 100K-row GPS
gallery takes ~30 s, so :func:`reference_predict` encodes it once for all its photos.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image

from locdiff_core.image_encoder import ImageEncoder, _architecture, _build_tower, _identity

if TYPE_CHECKING:
    from geoclip import GeoCLIP

_RESBLOCK = "transformer.resblocks."
_TOP_NAMES = ("conv1.weight", "class_embedding", "positional_embedding", "proj")  # mapped first
# per-layer parameters: open_clip name -> Hugging Face name (in_proj is split apart, below)
_LAYER_NAMES = {
    "ln_1": "layer_norm1",
    "attn.out_proj": "self_attn.out_proj",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}


def quick_gelu_encoder(seed: int = 0) -> ImageEncoder:
    """An untrained ViT-L-14 :class:`ImageEncoder` built as the ``openai`` tag is (QuickGELU,
    OpenAI's preprocessing), its tower initialised under ``torch.manual_seed(seed)``."""
    arch = _architecture("ViT-L-14", "openai")
    assert arch.quick_gelu
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tower = _build_tower(arch)
    identity = {**_identity(arch, None, None), "seed": seed}
    return ImageEncoder(tower, arch.preprocess, identity, torch.device("cpu"))


def hf_state_from_open_clip(
    tower_state: dict[str, torch.Tensor], *, hf_keys: Collection[str] | None = None
) -> dict[str, torch.Tensor]:
    """Map an open_clip ViT image-tower state dict onto Hugging Face ``CLIPModel`` keys
    (``vision_model.*`` and ``visual_projection.weight``).

    ``hf_keys``: the vision keys the result must have exactly (default: those of a CLIPModel
    shaped like the tower, built on the meta device). Raises ``ValueError`` when a tower key has
    no counterpart (an attention pooler, layer scale, a patch bias...) or an HF key is left unset.
    """
    state: dict[str, torch.Tensor] = {
        "vision_model.embeddings.patch_embedding.weight": tower_state["conv1.weight"],
        "vision_model.embeddings.class_embedding": tower_state["class_embedding"],
        "vision_model.embeddings.position_embedding.weight": tower_state["positional_embedding"],
        "visual_projection.weight": tower_state["proj"].T,  # open_clip: x @ proj, (width, out)
    }
    used = set(_TOP_NAMES)
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for p in ("weight", "bias"):
            state[f"vision_model.{theirs}.{p}"] = tower_state[f"{ours}.{p}"]
            used.add(f"{ours}.{p}")
    for i in range(_num_layers(tower_state)):
        src, dst = f"{_RESBLOCK}{i}.", f"vision_model.encoder.layers.{i}."
        for p in ("weight", "bias"):
            q, k, v = tower_state[f"{src}attn.in_proj_{p}"].chunk(3)  # rows ordered q, k, v
            for name, part in (("q", q), ("k", k), ("v", v)):
                state[f"{dst}self_attn.{name}_proj.{p}"] = part
            used.add(f"{src}attn.in_proj_{p}")
            for ours, theirs in _LAYER_NAMES.items():
                state[f"{dst}{theirs}.{p}"] = tower_state[f"{src}{ours}.{p}"]
                used.add(f"{src}{ours}.{p}")
    unused = sorted(tower_state.keys() - used)
    if unused:
        raise ValueError(f"open_clip tower keys with no Hugging Face counterpart: {unused[:5]}")
    shapes = _hf_vision_shapes(tower_state) if hf_keys is None else None
    expected = set(hf_keys) if shapes is None else set(shapes)
    missing, extra = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or extra:
        raise ValueError(f"Hugging Face vision keys left unset: {missing[:5]}; extra: {extra[:5]}")
    wrong = [k for k in expected if shapes is not None and state[k].shape != shapes[k]]
    if wrong:
        raise ValueError(f"Hugging Face vision tensors of the wrong shape: {sorted(wrong)[:5]}")
    return {k: v.contiguous() for k, v in state.items()}


def _num_layers(tower_state: dict[str, torch.Tensor]) -> int:
    blocks = {k[len(_RESBLOCK) :].split(".", 1)[0] for k in tower_state if k.startswith(_RESBLOCK)}
    return len(blocks)


def _hf_vision_shapes(tower_state: dict[str, torch.Tensor]) -> dict[str, torch.Size]:
    """The vision keys and shapes of a meta-device CLIPModel shaped like the tower."""
    from transformers import CLIPConfig, CLIPModel

    width, patch = tower_state["class_embedding"].shape[0], tower_state["conv1.weight"].shape[-1]
    grid = round((tower_state["positional_embedding"].shape[0] - 1) ** 0.5)
    vision = {
        "hidden_size": width,
        "intermediate_size": tower_state[f"{_RESBLOCK}0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": _num_layers(tower_state),
        "num_attention_heads": 1,  # head count shapes no parameter
        "patch_size": patch,
        "image_size": grid * patch,
    }
    projection = tower_state["proj"].shape[1]
    text = {"hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1}
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection)
    with torch.device("meta"):
        model = CLIPModel(config)
    return {
        k: v.shape
        for k, v in model.state_dict().items()
        if k.startswith(("vision_model.", "visual_projection."))
    }


def reference_geoclip(tower_state: dict[str, torch.Tensor]) -> GeoCLIP:
    """``geoclip.GeoCLIP`` with its released MLP, location-encoder and logit-scale weights and
    the image tower ``tower_state`` (an open_clip ViT-L/14 with QuickGELU) as its CLIP's vision
    part, loaded strictly; in eval mode, on the CPU. The global torch RNG is left untouched."""
    from geoclip import GeoCLIP

    with torch.random.fork_rng(devices=[]):
        model = GeoCLIP(from_pretrained=True, clip_pretrained=False)
    clip = model.image_encoder.CLIP
    act = clip.config.vision_config.hidden_act
    if act != "quick_gelu":
        raise RuntimeError(f"the installed transformers builds CLIP's vision MLP with {act!r}")
    vision_keys = [
        k for k in clip.state_dict() if k.startswith(("vision_model.", "visual_projection."))
    ]
    state = hf_state_from_open_clip(tower_state, hf_keys=vision_keys)
    prefix = "vision_model."
    clip.vision_model.load_state_dict(
        {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}, strict=True
    )
    clip.visual_projection.load_state_dict(
        {"weight": state["visual_projection.weight"]}, strict=True
    )
    return model.eval().requires_grad_(False)


@dataclass(frozen=True)
class ReferencePrediction:
    """What the reference makes of N photos, one row per photo, in the order given."""

    paths: list[Path]
    pixels: torch.Tensor  # (N, 3, 224, 224) the reference's own preprocessing
    raw_feature: torch.Tensor  # (N, 768) CLIPModel.get_image_features
    feature: torch.Tensor  # (N, 512) GeoCLIP's image MLP on it, before normalisation
    top_indices: torch.Tensor  # (N, k) int64 rows of model.gps_gallery, most probable first
    top_probs: torch.Tensor  # (N, k) their softmax probabilities over the whole gallery
    top_gps: torch.Tensor  # (N, k, 2) lat, lon deg of those rows


def reference_pixels(model: GeoCLIP, path: Path | str) -> torch.Tensor:
    """``(1, 3, 224, 224)`` pixels of a photo, read and preprocessed as ``GeoCLIP.predict``
    does (no EXIF orientation applied)."""
    with Image.open(path) as image:
        return model.image_encoder.preprocess_image(image.convert("RGB"))


@torch.inference_mode()
def reference_logits_from_pixels(model: GeoCLIP, pixels: torch.Tensor) -> torch.Tensor:
    """``(N, G)`` logits of pixels ``[N x 3 x 224 x 224]`` against GeoCLIP's G-row GPS gallery,
    by ``model.forward`` (the gallery is encoded once per call: ~30 s on a 2-core CPU)."""
    return model.forward(pixels, model.gps_gallery)


@torch.inference_mode()
def reference_predict(
    model: GeoCLIP, paths: Sequence[Path | str], top_k: int = 10
) -> ReferencePrediction:
    """``GeoCLIP.predict`` for several photos at once: the same steps (preprocess, forward,
    softmax, top-k) with one forward for the batch, so the gallery is encoded once. The
    features are those of that forward, caught at the input and output of GeoCLIP's MLP."""
    if not 1 <= top_k <= len(model.gps_gallery):
        raise ValueError(f"top_k must be between 1 and {len(model.gps_gallery)}, got {top_k}")
    pixels = torch.cat([reference_pixels(model, p) for p in paths])
    seen: dict[str, torch.Tensor] = {}

    def keep(module, inputs, output):  # the MLP's input is get_image_features' output
        seen["raw"], seen["feature"] = inputs[0], output

    hook = model.image_encoder.mlp.register_forward_hook(keep)
    try:
        probs = reference_logits_from_pixels(model, pixels).softmax(dim=-1)
    finally:
        hook.remove()
    top = torch.topk(probs, top_k, dim=1)
    return ReferencePrediction(
        paths=[Path(p) for p in paths],
        pixels=pixels,
        raw_feature=seen["raw"],
        feature=seen["feature"],
        top_indices=top.indices,
        top_probs=top.values,
        top_gps=model.gps_gallery[top.indices],
    )
