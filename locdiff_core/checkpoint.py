"""Checkpoints: safetensors weights with the JSON config that rebuilds the model.

One file, ``checkpoint.safetensors``. Its header metadata holds ``locdiff_config``: the format
version, the CS-UNet config (degree L, widths, condition width), the diffusion config (schedule,
prediction, loss, latent scaling), the image encoder's identity and free-form training facts;
and ``locdiff_sha256``: the :func:`content_sha256` of that config text and of every tensor.
Loading checks each config field's type and range (naming the field), the tensors' names,
shapes and dtypes against the config before anything is allocated, the sha256 (a file damaged
since it was saved is refused) and that every value is finite; nothing is ever unpickled.
A file without ``locdiff_sha256`` (written before it was recorded) loads with a warning that
it is unchecked. Writes are atomic (temporary file in the same folder, fsync, rename).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from locdiff_core.atomic_file import atomic_write
from locdiff_core.config_fields import Int, parse_field, refuse_unknown, require_object
from locdiff_core.diffusion import DiffusionConfig
from locdiff_core.encoder_identity import require_same_encoder
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.photo.errors import PhotoErrorKind, os_error
from locdiff_core.photo.read_errors import describe_content
from locdiff_core.run_layout import CHECKPOINT_FILE, CONFIG_KEY, model_file

FORMAT = "locdiff-checkpoint"
FORMAT_VERSION = 1
FILE_NAME = CHECKPOINT_FILE
SHA256_KEY = "locdiff_sha256"
_TOP_LEVEL = {"format", "format_version", "model", "diffusion", "encoder", "training"}


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
        """The config of the file ``source``; ``ValueError`` naming the file and the field."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"{source}: the checkpoint config is not valid JSON ({exc})") from exc
        try:
            return cls._from_raw(raw)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc

    @classmethod
    def _from_raw(cls, raw: object) -> CheckpointConfig:
        raw = require_object(raw, CONFIG_KEY)
        if raw.get("format") != FORMAT:
            found = str(raw.get("format"))[:60]
            raise ValueError(f"not a LocDiff checkpoint ({CONFIG_KEY}.format is {found!r})")
        version = raw.get("format_version")
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise ValueError(
                f"checkpoint format version {version} is newer than this program reads "
                f"({FORMAT_VERSION}); upgrade locdiff"
            )
        parse_field(f"{CONFIG_KEY}.format_version", version, Int(1, FORMAT_VERSION))
        refuse_unknown(raw, _TOP_LEVEL, CONFIG_KEY)
        model = CSUNetConfig.from_dict(raw.get("model"), f"{CONFIG_KEY}.model")
        diffusion = DiffusionConfig.from_dict(raw.get("diffusion"), f"{CONFIG_KEY}.diffusion")
        for part, config in (("model", model), ("diffusion", diffusion)):
            try:
                config.validate()  # what involves several fields
            except ValueError as exc:
                raise ValueError(f"{CONFIG_KEY}.{part}: {exc}") from exc
        encoder = raw.get("encoder")
        if encoder is not None:
            encoder = dict(require_object(encoder, f"{CONFIG_KEY}.encoder"))
        training = dict(require_object(raw.get("training", {}), f"{CONFIG_KEY}.training"))
        return cls(model, diffusion, encoder, training)


def content_sha256(value: object) -> str:
    """A sha256 of nested dicts, lists and tensors: the same for equal contents, whatever
    the file they were read from (tensors count by dtype, shape and bytes; dict entries in the
    order of their keys' ``repr``)."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value: object) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"tensor {t.dtype} {tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, Mapping):
        digest.update(f"dict {len(value)}\n".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(f"list {len(value)}\n".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__} {value!r}\n".encode())


def damaged_message(source: str | os.PathLike) -> str:
    """What to say about a file whose sha256 is not the one recorded at save time."""
    return (
        f"{source} is damaged: its sha256 does not match the one recorded at save time; "
        "re-copy it or retrain"
    )


def nonfinite_problem(label: str, tensor: torch.Tensor) -> str | None:
    """``"holds NaN values in <label>: the file is damaged ..."`` (or infinite values) for a
    tensor that is not all finite; ``None`` otherwise (and for integer tensors)."""
    if not tensor.is_floating_point() or bool(tensor.isfinite().all()):
        return None
    what = "NaN" if bool(tensor.isnan().any()) else "infinite"
    return (
        f"holds {what} values in {label}: the file is damaged (or was saved after training "
        "diverged); re-copy it or retrain"
    )


def checkpoint_path(path: str | os.PathLike) -> Path:
    """``path`` itself if it names a ``.safetensors`` file, else ``path / checkpoint.safetensors``
    (a run folder)."""
    p = Path(path)
    return p if p.suffix == ".safetensors" and not p.is_dir() else p / FILE_NAME


def save_checkpoint(path: str | os.PathLike, model: CSUNet, config: CheckpointConfig) -> Path:
    """Atomically write weights, config and their sha256; returns the file written."""
    target = checkpoint_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    text = config.to_json()
    metadata = {CONFIG_KEY: text, SHA256_KEY: content_sha256({"config": text, "tensors": tensors})}
    data = save(tensors, metadata=metadata)
    with atomic_write(target) as fh:
        fh.write(data)
    return target


def safetensors_problem(target: Path, exc: Exception) -> str:
    """What a safetensors (or OS) error on the model file ``target`` means, in plain words:
    a disk or permission problem, an empty or cut-short file, a file of another kind, or
    (unknown) safetensors' own words after a plain sentence."""
    if isinstance(exc, OSError) and exc.errno is not None:
        error = os_error(target, exc, "reading the model file", kind=PhotoErrorKind.UNREADABLE)
        return error.message
    try:
        size = target.stat().st_size
        with open(target, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        size, head = -1, b""
    header_end = 8 + int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    if size == 0:
        return "the model file is empty (0 bytes); download or copy it again"
    if head and not head.strip(b"\0"):
        return "the model file holds only zero bytes: the copy failed; download or copy it again"
    if "incomplete metadata" in str(exc) or (head[8:9] == b"{" and header_end > size):
        return (
            "the model file is cut short (truncated): the download or copy did not finish; "
            "download or copy it again"
        )
    other = describe_content(head)
    if other is not None:
        return f"not a readable safetensors file ({other})"
    return (
        "not a readable safetensors file: safetensors could not read it "
        f"({type(exc).__name__}: {exc})"
    )


def _read_metadata(target: Path) -> dict[str, str]:
    if not target.exists():
        raise ValueError(f"{target}: no checkpoint there (train one with `locdiff train`)")
    try:
        with safe_open(str(target), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{target}: {safetensors_problem(target, exc)}") from exc
    if CONFIG_KEY not in meta:
        raise ValueError(f"{target}: safetensors file without a LocDiff config")
    return meta


def read_config(path: str | os.PathLike) -> CheckpointConfig:
    """The config of a checkpoint file or run folder, without loading weights."""
    target = checkpoint_path(path)
    return CheckpointConfig.from_json(_read_metadata(target)[CONFIG_KEY], str(target))


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[CSUNet, CheckpointConfig]:
    """Rebuild the model (in eval mode, on ``device``) and its config; validates everything.
    A run folder gives its best validation's weights when it has them (:func:`model_file`).

    ``ValueError`` names the file and the problem: a bad config field, tensors that do not
    fit the config, a sha256 that differs from the recorded one, or NaN/infinite values.
    """
    target = model_file(path)
    meta = _read_metadata(target)
    config = CheckpointConfig.from_json(meta[CONFIG_KEY], str(target))
    with torch.device("meta"):  # the shapes the config needs, without allocating them
        model = CSUNet(config.model)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    try:
        with safe_open(str(target), framework="pt") as fh:
            _check_layout(fh, expected, target)
            state = {k: fh.get_tensor(k) for k in sorted(expected)}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{target}: {safetensors_problem(target, exc)}") from exc
    recorded = meta.get(SHA256_KEY)
    if recorded is None:
        warnings.warn(
            f"{target} records no sha256 (it was saved by an older locdiff), so damage to it "
            "cannot be detected; it loads unchecked (a checkpoint saved again records one)",
            stacklevel=2,
        )
    elif content_sha256({"config": meta[CONFIG_KEY], "tensors": state}) != recorded:
        raise ValueError(damaged_message(target))
    for k, t in state.items():
        problem = nonfinite_problem(f"tensor {k!r}", t)
        if problem:
            raise ValueError(f"{target} {problem}")
    model = model.to_empty(device="cpu")
    model.load_state_dict(state)
    return model.to(device).eval(), config


_DTYPES = {torch.float32: "F32"}  # what a CSUNet saves (see save_checkpoint)


def _check_layout(fh, expected: dict[str, tuple[tuple, torch.dtype]], target: Path) -> None:
    """Refuse tensors missing, unexpected, or of another shape or dtype than the config's."""
    names = set(fh.keys())
    problems = [f"missing tensor {k!r}" for k in sorted(expected.keys() - names)]
    problems += [f"unexpected tensor {k!r}" for k in sorted(names - expected.keys())]
    for k in sorted(names & expected.keys()):
        part = fh.get_slice(k)
        shape, dtype = tuple(part.get_shape()), _DTYPES.get(expected[k][1], str(expected[k][1]))
        if shape != expected[k][0]:
            problems.append(f"tensor {k!r} has shape {shape}, the config needs {expected[k][0]}")
        elif part.get_dtype() != dtype:
            problems.append(f"tensor {k!r} has dtype {part.get_dtype()}, the model needs {dtype}")
    if problems:
        raise ValueError(f"{target}: weights do not match the config: " + "; ".join(problems))


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
