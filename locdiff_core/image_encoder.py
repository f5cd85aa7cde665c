"""The frozen CLIP image encoder (paper Sec. 4.5): photos in, unit-length embeddings out.

The only module that imports open_clip, and only when an encoder is built, so importing this
module stays cheap. Only the image tower is built and loaded: a CLIP checkpoint's text tower,
tokenizer and logit scale are never needed to condition LocDiffusion.

An encoder is an open_clip architecture (a built-in name such as ``ViT-L-14``, the paper's, or
``ViT-B-32``, a light option; or the path of an open_clip model-config JSON) with weights: a
pretrained tag (``openai``) or a local file (safetensors, or a torch state dict read with
``weights_only``). :attr:`ImageEncoder.identity` names it; datasets and checkpoints carry that
identity so a checkpoint refuses embeddings from another encoder
(:mod:`locdiff_core.encoder_identity`).

Weights are looked for offline (:func:`find_weights`): ``EncoderConfig.weights`` when given,
else LocDiff's download folder (where a file is used once its sha256 is checked), the Hugging
Face cache and open_clip's URL cache (:mod:`locdiff_core.encoder_weights`). Nothing is
downloaded unless asked for (``download=True``, ``locdiff ... --download``), and a download is
accepted only with a known sha256 (``sha256=``, ``--sha256``; else the table of known files or
the Hub's announcement).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from locdiff_core.download import ChecksumUnknownError
from locdiff_core.encoder_identity import describe_encoder, require_same_encoder
from locdiff_core.encoder_weights import (
    LocalWeights,
    WeightsNotFoundError,
    download_tag_weights,
    existing_weights,
    find_tag_weights,
    no_checksum_hint,
    reload_hint,
)
from locdiff_core.image_pixels import PhotoPixels, stack_good
from locdiff_core.photo.errors import PhotoError, PhotoErrorKind
from locdiff_core.photo.reading import to_rgb
from locdiff_core.photo.safe_io import sha256_of

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_CHUNK = 64  # images preprocessed and embedded together by embed_images

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class EncoderConfig:
    model: str = "ViT-L-14"  # an open_clip name, or a path to an open_clip model-config JSON
    pretrained: str | None = "openai"  # open_clip tag; with `weights`: the tag they are, or None
    weights: Path | None = None  # a local weights file (safetensors or a torch state dict)
    device: str = "auto"  # auto | cpu | cuda[:N]
    cache_dir: Path | None = None  # default: LocDiff's, Hugging Face's and open_clip's caches

    def validate(self) -> None:
        if not self.model:
            raise ValueError("the encoder model is empty; name one such as ViT-L-14 or a .json")
        if self.pretrained is None and self.weights is None:
            raise ValueError(
                f"encoder {self.model}: give a pretrained tag (e.g. --pretrained openai) or a "
                "weights file (--weights FILE)"
            )
        if is_config_file(self.model) and self.pretrained is not None:
            raise ValueError(
                f"{self.model}: a custom model config has no pretrained tags; pass its weights "
                "file (--weights FILE) instead"
            )
        resolve_device(self.device)


def is_config_file(model: str) -> bool:
    """Whether ``model`` names a model-config JSON file rather than a built-in architecture."""
    return model.lower().endswith(".json")


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when torch sees it, else the CPU), ``cpu`` or ``cuda[:N]``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: torch sees no CUDA device; use cpu or auto")
        return torch.device(device)
    raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda[:N]")


def _open_clip():
    import open_clip

    return open_clip


# --- architectures -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Architecture:
    name: str
    model_cfg: dict  # open_clip model config: embed_dim, vision_cfg, ...
    preprocess: dict  # open_clip PreprocessCfg fields, JSON-able
    custom: bool  # from a config file rather than open_clip's registry
    tag_cfg: dict = field(default_factory=dict)  # open_clip's pretrained config of the tag

    @property
    def dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    @property
    def quick_gelu(self) -> bool:  # OpenAI's weights need QuickGELU; a mismatch is silent
        return bool(self.model_cfg.get("quick_gelu") or self.tag_cfg.get("quick_gelu"))


def _architecture(model: str, pretrained: str | None) -> _Architecture:
    if is_config_file(model):
        path = Path(model)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ValueError(f"{path}: no such model-config file") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable JSON model config ({exc})") from exc
        return _custom_architecture(path.stem, raw, str(path))
    if model.startswith(("hf-hub:", "local-dir:")):
        raise ValueError(
            f"{model}: hub and folder models are not supported; save the model's config as a "
            ".json file and pass it with its weights file"
        )
    oc = _open_clip()
    model_cfg = oc.get_model_config(model)
    if model_cfg is None:
        close = difflib.get_close_matches(model, oc.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(
            f"unknown open_clip model {model!r}; {hint}open_clip.list_models() names them all, "
            "or pass a model-config .json file"
        )
    tag_cfg: dict = {}
    if pretrained is not None:
        tag_cfg = oc.get_pretrained_cfg(model, pretrained)
        if not tag_cfg:
            tags = ", ".join(oc.list_pretrained_tags_by_model(model)) or "none"
            raise ValueError(f"{model} has no pretrained tag {pretrained!r}; its tags: {tags}")
    return _Architecture(model, model_cfg, _preprocess(model_cfg, tag_cfg), False, tag_cfg)


def _custom_architecture(name: str, raw, source: str) -> _Architecture:
    wrapped = isinstance(raw, dict) and "model_cfg" in raw
    model_cfg = raw["model_cfg"] if wrapped else raw
    if not isinstance(model_cfg, dict) or not {"embed_dim", "vision_cfg"} <= model_cfg.keys():
        raise ValueError(
            f"{source}: an open_clip model config needs 'embed_dim' and 'vision_cfg' (see "
            "open_clip/model_configs/ViT-B-32.json)"
        )
    overrides = raw.get("preprocess_cfg") or {} if wrapped else {}
    return _Architecture(name, model_cfg, _preprocess(model_cfg, overrides), True)


def _preprocess(model_cfg: dict, overrides: dict) -> dict:
    out = {
        "size": model_cfg["vision_cfg"].get("image_size", 224),
        "mean": _OPENAI_MEAN,
        "std": _OPENAI_STD,
        "interpolation": "bicubic",
        "resize_mode": "shortest",
        "fill_color": 0,
    }
    out.update({k: overrides[k] for k in out.keys() - {"size"} if k in overrides})
    return json.loads(json.dumps(out))  # tuples become lists: the form it has after a round trip


def _identity(arch: _Architecture, pretrained: str | None, weights: Path | None) -> dict:
    identity: dict = {"name": arch.name, "pretrained": pretrained, "dim": arch.dim}
    if pretrained is None and weights is not None:
        identity["weights_sha256"] = sha256_of(weights)
    if arch.custom:
        identity["config"] = json.loads(json.dumps(arch.model_cfg))
        identity["preprocess"] = arch.preprocess
    return identity


# --- finding and downloading weights (locdiff_core.encoder_weights) ---------------------


def locate_weights(config: EncoderConfig, *, sha256: str | None = None) -> LocalWeights:
    """The local weights file of ``config`` with its checked sha256, ``sha256`` being the one
    the user expects (:func:`~locdiff_core.encoder_weights.find_tag_weights`); raises
    :class:`WeightsNotFoundError` without one."""
    config.validate()
    if config.weights is not None:
        return LocalWeights(existing_weights(config.weights, config.model))
    arch = _architecture(config.model, config.pretrained)
    return find_tag_weights(arch.tag_cfg, config.model, config.pretrained, config.cache_dir, sha256)


def find_weights(config: EncoderConfig, *, sha256: str | None = None) -> Path:
    """The local weights file of ``config`` (:func:`locate_weights`)."""
    return locate_weights(config, sha256=sha256).path


def download_weights(
    config: EncoderConfig,
    progress: ProgressFn | None = None,
    *,
    endpoint: str | None = None,
    cancel: Callable[[], bool] | None = None,
    sha256: str | None = None,
) -> Path:
    """Download the weights of a pretrained tag into LocDiff's cache folder; returns the file.

    From ``endpoint``, else ``$HF_ENDPOINT``, else the Hugging Face Hub (the safetensors file
    when the repository has one). Atomic, size and sha256 checked (against ``sha256`` when
    given, else the known files' table, else the Hub's announcement; with none of them it is
    refused with :class:`~locdiff_core.download.ChecksumUnknownError`);
    ``progress(bytes, total)``; ``cancel()`` returning True stops it with
    :class:`~locdiff_core.download.DownloadCancelled`, keeping what arrived for a resume.
    """
    config.validate()
    if config.weights is not None or config.pretrained is None:
        raise ValueError("only the weights of a pretrained tag can be downloaded")
    arch = _architecture(config.model, config.pretrained)
    try:
        return download_tag_weights(
            arch.tag_cfg, config.cache_dir, progress, endpoint, cancel=cancel, sha256=sha256
        )
    except ChecksumUnknownError as exc:
        hint = no_checksum_hint(config.model, config.pretrained, config.cache_dir)
        raise ChecksumUnknownError(f"{exc};\n{hint}") from exc


# --- building the image tower --------------------------------------------------------------


def _build_tower(arch: _Architecture, *, meta: bool = False) -> torch.nn.Module:
    from open_clip.model import _build_vision_tower

    vision_cfg = dict(arch.model_cfg["vision_cfg"])
    vision_cfg.pop("timm_model_pretrained", None)  # never fetch timm weights behind our back
    try:
        with torch.device("meta" if meta else "cpu"):
            return _build_vision_tower(arch.dim, vision_cfg, quick_gelu=arch.quick_gelu)
    except (TypeError, ValueError, KeyError, AssertionError) as exc:
        raise ValueError(f"{arch.name}: the model config cannot be built ({exc!r})") from exc


def _load_tower(arch: _Architecture, path: Path) -> torch.nn.Module:
    """The image tower with the weights of ``path`` (a full CLIP state dict or the tower's)."""
    from open_clip.factory import load_state_dict

    try:
        state = load_state_dict(str(path))
    except Exception as exc:  # safetensors, pickle and zip errors of a damaged file
        raise ValueError(
            f"{path}: cannot read weights ({type(exc).__name__}: {exc}); pass a safetensors "
            "file or a torch state dict"
        ) from exc
    visual = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    visual = {k: v.float() if v.is_floating_point() else v for k, v in (visual or state).items()}
    tower = _build_tower(arch, meta=True)  # no random init: every tensor comes from the file
    expected = tower.state_dict().keys()
    missing, unexpected = sorted(expected - visual.keys()), sorted(visual.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            f"{path}: these weights do not fit {arch.name}: missing {missing[:3]}, unexpected "
            f"{unexpected[:3]} ({len(missing)} and {len(unexpected)} in all); is it the "
            "weights file of this model?"
        )
    try:
        tower.load_state_dict(visual, strict=True, assign=True)
    except RuntimeError as exc:  # shape mismatches
        raise ValueError(f"{path}: these weights do not fit {arch.name}: {exc}") from exc
    if any(t.is_meta for t in [*tower.parameters(), *tower.buffers()]):
        tower = _build_tower(arch)  # a tower with non-persistent buffers: build it for real
        tower.load_state_dict(visual, strict=True)
    return tower


def make_transform(preprocess: dict):
    """open_clip's inference transform (resize, centre crop, normalise) for ``preprocess``."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in preprocess.items()}
    return image_transform_v2(PreprocessCfg(**cfg), is_train=False)


# --- the encoder ---------------------------------------------------------------------------


class ImageEncoder:
    """A frozen CLIP image tower with its preprocessing; images in, (N, D) unit rows out."""

    def __init__(
        self, tower: torch.nn.Module, preprocess: dict, identity: dict, device: torch.device
    ) -> None:
        self.tower = tower.to(device).eval().requires_grad_(False)
        self.preprocess = preprocess
        self.identity = identity
        self.dim = int(identity["dim"])
        self.device = device
        self._transform = make_transform(preprocess)
        size = preprocess["size"]
        # JPEGs decode at a reduced DCT scale while both sides stay >= twice the input size
        self.decode_min_px = 2 * (max(size) if isinstance(size, list) else int(size))

    def __repr__(self) -> str:
        return f"ImageEncoder({describe_encoder(self.identity)}, device={self.device})"

    @classmethod
    def load(
        cls,
        config: EncoderConfig,
        *,
        download: bool = False,
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
        sha256: str | None = None,
    ) -> ImageEncoder:
        """Build the encoder of ``config`` from local weights, or download them first when
        ``download`` is set (``progress``, ``cancel``, ``sha256``: see
        :func:`download_weights`); raises :class:`WeightsNotFoundError` offline without
        weights. Downloaded weights that cannot be loaded say how to download them again."""
        config.validate()
        device = resolve_device(config.device)
        arch = _architecture(config.model, config.pretrained)
        try:
            path = find_weights(config, sha256=sha256)
        except WeightsNotFoundError:
            if not download or config.weights is not None:
                raise
            path = download_weights(config, progress, cancel=cancel, sha256=sha256)
        identity = _identity(arch, config.pretrained, path)
        try:
            tower = _load_tower(arch, path)
        except ValueError as exc:
            if config.weights is not None:
                raise
            hint = reload_hint(config.model, config.pretrained, config.cache_dir)
            raise ValueError(f"{exc};\n{hint}") from exc
        return cls(tower, arch.preprocess, identity, device)

    @classmethod
    def for_checkpoint(
        cls,
        identity: dict,
        *,
        weights: Path | None = None,
        device: str = "auto",
        download: bool = False,
        progress: ProgressFn | None = None,
        cache_dir: Path | None = None,
        cancel: Callable[[], bool] | None = None,
        sha256: str | None = None,
    ) -> ImageEncoder:
        """Rebuild the encoder a checkpoint (or dataset) records; ``weights`` is needed when the
        identity has no pretrained tag, and must be the very file it was made with
        (``sha256``: what a downloaded weights file must have, see :func:`download_weights`)."""
        if not isinstance(identity, dict) or not identity.get("name"):
            raise ValueError(
                "the checkpoint records no image encoder; embed the photos with `locdiff embed` "
                "and predict from the embeddings instead"
            )
        name, pretrained = str(identity["name"]), identity.get("pretrained")
        if pretrained is None and weights is None:
            raise WeightsNotFoundError(
                f"the checkpoint's encoder is {describe_encoder(identity)}, which has no "
                "pretrained tag; pass its weights file with --encoder-weights FILE"
            )
        if identity.get("config") is not None:
            raw = {"model_cfg": identity["config"], "preprocess_cfg": identity.get("preprocess")}
            arch = _custom_architecture(name, raw, "the checkpoint's encoder identity")
            path = existing_weights(weights, name)
            tower = _load_tower(arch, path)
            encoder = cls(
                tower, arch.preprocess, _identity(arch, None, path), resolve_device(device)
            )
        else:
            config = EncoderConfig(name, pretrained, weights, device, cache_dir)
            encoder = cls.load(
                config, download=download, progress=progress, cancel=cancel, sha256=sha256
            )
        require_same_encoder(
            identity,
            encoder.identity,
            lambda want, got, problem: (
                f"{weights or name}: gives {got}, but the checkpoint was trained on {want} "
                f"({problem}); pass the encoder weights the training data was embedded with"
            ),
        )
        return encoder

    @classmethod
    def random_init(cls, model: str, *, seed: int = 0, device: str = "cpu") -> ImageEncoder:
        """An untrained tower of architecture ``model`` (for benchmarks and tests; its identity
        records the seed, so its embeddings never pass for a real encoder's)."""
        arch = _architecture(model, None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            tower = _build_tower(arch)
        identity = {**_identity(arch, None, None), "seed": seed}
        return cls(tower, arch.preprocess, identity, resolve_device(device))

    @torch.inference_mode()
    def embed_batch(
        self, pixels: torch.Tensor, *, normalize: bool = True, half: bool = False
    ) -> np.ndarray:
        """Embed preprocessed pixels ``[N x 3 x H x W]``; returns ``(N, D)`` float32 unit rows,
        or with ``normalize=False`` the tower's raw projected features (GeoCLIP's input).
        ``half`` runs the tower under float16 autocast on CUDA (about twice the throughput;
        features agree with float32 to about 1e-3 of their length)."""
        pixels = pixels.to(self.device, torch.float32, non_blocking=True)
        with torch.autocast("cuda", torch.float16, enabled=half and self.device.type == "cuda"):
            out = self.tower(pixels)
        if isinstance(out, tuple):  # towers configured to return tokens too
            out = out[0]
        out = out.float()
        if normalize:
            out = torch.nn.functional.normalize(out, dim=-1)
        return out.cpu().numpy().astype(np.float32, copy=False)

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """The preprocessed pixels ``[3 x H x W]`` of a PIL image (EXIF orientation applied)."""
        return self._transform(to_rgb(ImageOps.exif_transpose(image)))

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``(N, D)`` float32 unit rows for PIL images (EXIF orientation applied)."""
        rows = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(images), _CHUNK):
            chunk = images[start : start + _CHUNK]
            rows.append(self.embed_batch(torch.stack([self.pixels(im) for im in chunk])))
        return np.concatenate(rows)

    def embed_paths(
        self,
        paths: Sequence[Path],
        *,
        batch_size: int = 32,
        num_workers: int = 0,
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
        normalize: bool = True,
        half: bool | None = None,
    ) -> Iterator[tuple[int, np.ndarray | PhotoError]]:
        """Yields ``(index into paths, (D,) float32 embedding or the PhotoError)`` in order.

        Photos are decoded and preprocessed by ``num_workers`` DataLoader processes (0: this
        one); one bad file never stops the batch; ``cancel()`` stops between batches.
        ``normalize=False`` yields the raw features; ``half`` (default: on CUDA) the float16
        tower (see :meth:`embed_batch`). On CUDA each batch arrives pinned.
        """
        if batch_size < 1 or num_workers < 0:
            raise ValueError("batch_size must be >= 1 and num_workers >= 0")
        paths = [Path(p) for p in paths]
        loader = torch.utils.data.DataLoader(
            PhotoPixels(paths, self.preprocess, self.decode_min_px, make_transform),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=stack_good,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if num_workers else None,
            persistent_workers=False,
        )
        done = 0
        if progress is not None:
            progress(0, len(paths))
        for batch, pixels in loader:
            if cancel is not None and cancel():
                return
            good = [i for i, ok, _ in batch if ok]
            half = self.device.type == "cuda" if half is None else half
            rows = self.embed_batch(pixels, normalize=normalize, half=half) if good else []
            embedded = dict(zip(good, rows, strict=True))
            for i, _, error in batch:
                if error is None:
                    yield i, embedded[i]
                else:
                    yield i, PhotoError(PhotoErrorKind(error[0]), paths[i], error[1])
            done += len(batch)
            if progress is not None:
                progress(done, len(paths))
