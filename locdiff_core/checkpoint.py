"""Checkpoints: safetensors weights with the JSON config that rebuilds the model.

One file, ``checkpoint.safetensors``. Its header metadata holds ``locdiff_config``: the format
version, the CS-UNet config (degree L, widths, condition width), the diffusion config (schedule,
prediction, loss, latent scaling), the image encoder's identity and free-form training facts.
Loading validates all of it against the weights and names every mismatch; nothing is ever
unpickled. Writes are atomic (temporary file in the same folder, fsync, rename).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from locdiff_core.atomic_file import atomic_write
from locdiff_core.diffusion import DiffusionConfig
from locdiff_core.encoder_identity import require_same_encoder
from locdiff_core.nn import CSUNet, CSUNetConfig

FORMAT = "locdiff-checkpoint"
FORMAT_VERSION = 1
FILE_NAME = "checkpoint.safetensors"


@dataclass(frozen=True)
class CheckpointConfig:
    model: CSUNetConfig
    diffusion: DiffusionConfig
    encoder: dict | None = None  # image_encoder identity: {"name", "pretrained", "dim", ...}
    training: dict = field(default_factory=dict)

    def to_json(self) -> str:
        model = dataclasses.asdict(self.model)
        model["widths"] = list(self.model.widths)
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "model": model,
                "diffusion": self.diffusion.to_dict(),
                "encoder": self.encoder,
                "training": self.training,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, source: str) -> CheckpointConfig:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: the checkpoint config is not valid JSON ({exc})") from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError(f"{source}: not a LocDiff checkpoint (format {raw.get('format')!r})")
        version = raw.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(
                f"{source}: checkpoint format version {version!r} is newer than this program "
                f"reads ({FORMAT_VERSION}); upgrade locdiff"
            )
        try:
            m = dict(raw["model"])
            m["widths"] = tuple(int(w) for w in m["widths"])
            model = CSUNetConfig(**m)
            model.validate()
            diffusion = DiffusionConfig.from_dict(raw["diffusion"])
            diffusion.validate()
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: invalid checkpoint config: {exc!r}") from exc
        encoder = raw.get("encoder")
        if encoder is not None and not isinstance(encoder, dict):
            raise ValueError(f"{source}: the encoder identity must be an object, got {encoder!r}")
        return cls(model, diffusion, encoder, dict(raw.get("training") or {}))


def checkpoint_path(path: str | os.PathLike) -> Path:
    """``path`` itself if it names a ``.safetensors`` file, else ``path / checkpoint.safetensors``
    (a run folder)."""
    p = Path(path)
    return p if p.suffix == ".safetensors" and not p.is_dir() else p / FILE_NAME


def save_checkpoint(path: str | os.PathLike, model: CSUNet, config: CheckpointConfig) -> Path:
    """Atomically write weights and config; returns the file written."""
    target = checkpoint_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = save(tensors, metadata={"locdiff_config": config.to_json()})
    with atomic_write(target) as fh:
        fh.write(data)
    return target


def read_config(path: str | os.PathLike) -> CheckpointConfig:
    """The config of a checkpoint file or run folder, without loading weights."""
    target = checkpoint_path(path)
    if not target.exists():
        raise ValueError(f"{target}: no checkpoint there (train one with `locdiff train`)")
    try:
        with safe_open(str(target), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{target}: not a readable safetensors file ({exc})") from exc
    if "locdiff_config" not in meta:
        raise ValueError(f"{target}: safetensors file without a LocDiff config")
    return CheckpointConfig.from_json(meta["locdiff_config"], str(target))


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[CSUNet, CheckpointConfig]:
    """Rebuild the model (in eval mode, on ``device``) and its config; validates everything."""
    target = checkpoint_path(path)
    config = read_config(target)
    model = CSUNet(config.model)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        with safe_open(str(target), framework="pt") as fh:
            names = set(fh.keys())
            problems = [f"missing tensor {k!r}" for k in sorted(expected.keys() - names)]
            problems += [f"unexpected tensor {k!r}" for k in sorted(names - expected.keys())]
            state = {}
            for k in sorted(names & expected.keys()):
                t = fh.get_tensor(k)
                if tuple(t.shape) != expected[k]:
                    problems.append(
                        f"tensor {k!r} has shape {tuple(t.shape)}, the config needs {expected[k]}"
                    )
                elif not torch.isfinite(t).all():
                    problems.append(f"tensor {k!r} contains NaN or inf")
                state[k] = t
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{target}: corrupted checkpoint ({exc})") from exc
    if problems:
        raise ValueError(f"{target}: weights do not match the config: " + "; ".join(problems))
    model.load_state_dict(state)
    return model.to(device).eval(), config


def check_encoder(expected: dict | None, actual: dict | None, source: str) -> None:
    """Refuse embeddings made by another image encoder than the checkpoint's: another
    architecture, preprocessing, width, pretrained tag or weights file (compared by sha256)."""
    if expected is None or actual is None:
        return
    require_same_encoder(
        expected,
        actual,
        lambda want, got, problem: (
            f"{source} was embedded with {got}, but the checkpoint expects {want} ({problem}); "
            "embed the photos again with the checkpoint's encoder (`locdiff embed` with its "
            "--model and --pretrained or --weights)"
        ),
    )
