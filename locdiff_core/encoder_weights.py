"""Where image-encoder weights live, and fetching them (see :mod:`locdiff_core.image_encoder`).

Weights of an open_clip pretrained tag are looked for offline, in this order:

1. LocDiff's download folder: ``cache_dir``, else ``$LOCDIFF_CACHE_DIR``, else the per-user cache
   folder, then ``<Hugging Face repo id>/<file name>`` (where :func:`download_tag_weights` writes);
2. the Hugging Face cache (``cache_dir`` when given, else ``$HF_HUB_CACHE``), where open_clip
   itself downloads;
3. open_clip's URL cache (``cache_dir``, else ``~/.cache/clip``) for tags with a direct URL.

A file in LocDiff's download folder is used only once its sha256 is checked
(:func:`~locdiff_core.verified_file.check_file`; a record beside it spares hashing it at each
start) against the one the user gives, else :data:`KNOWN_FILES`, else the one verified when it
was downloaded; a mismatch is a :class:`DamagedWeightsError` that says how to download it again.
A download is verified against the same sha256 (and the known size), else against what the
Hub announces; with neither it is refused, and the message says how to give ``--sha256``.

Functions take open_clip's pretrained config of the tag (``tag_cfg``: ``hf_hub``, ``url``), so
this module needs no open_clip itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from locdiff_core.download import DownloadError, download_verified, hf_file_url
from locdiff_core.verified_file import DamagedFileError, check_file, record_path, write_record

CACHE_ENV = "LOCDIFF_CACHE_DIR"


@dataclass(frozen=True)
class KnownFile:
    """The size and sha256 a published weights file has (the Hub's LFS metadata of it)."""

    size: int  # bytes; 0 when only the sha256 is known
    sha256: str


#: (Hugging Face repo id, file name) -> the file's size and sha256, for files whose checksum is
#: published; a download must match them whatever the server announces, and a copy on disk is
#: checked against them. Files not listed are checked against the Hub's announcement or a
#: sha256 the user gives (``--sha256``); only checksums known for certain belong here.
KNOWN_FILES: dict[tuple[str, str], KnownFile] = {
    ("timm/vit_large_patch14_clip_224.openai", "open_clip_model.safetensors"): KnownFile(
        1_710_517_724, "9ce2e8a8ebfff3793d7d375ad6d3c35cb9aebf3de7ace0fc7308accab7cd207e"
    ),
    ("timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors"): KnownFile(
        605_143_284, "e6d1bd7789aa45192b3bf90570a789b478bae1b74ebcce7eddd908e83a2b7c31"
    ),
}


class WeightsNotFoundError(FileNotFoundError):
    """No weights on this computer; the message names the model, where it looked, and the
    command that downloads them."""


class DamagedWeightsError(ValueError):
    """A weights file in LocDiff's download folder whose sha256 is wrong; the message names it
    and the command that downloads it again."""


@dataclass(frozen=True)
class LocalWeights:
    """A weights file on this computer, and its sha256 once checked (``None``: nothing to check
    it against, or a file outside LocDiff's download folder)."""

    path: Path
    sha256: str | None = None


def expected_checksum(repo: str, name: str, sha256: str | None = None) -> KnownFile | None:
    """What ``name`` in ``repo`` must be: the user's ``sha256`` (with the known size when it is
    the known file), else :data:`KNOWN_FILES`' entry; ``None`` when neither is known."""
    known = KNOWN_FILES.get((repo, name))
    if sha256 is None:
        return known
    sha256 = sha256.lower()
    return KnownFile(known.size if known and known.sha256 == sha256 else 0, sha256)


def default_cache_dir() -> Path:
    """Where downloaded weights go: ``$LOCDIFF_CACHE_DIR``, else the per-user cache folder."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("locdiff")) / "weights"


def hf_files(tag_cfg: dict) -> tuple[str, list[str]] | None:
    """The tag's Hugging Face repo id and its candidate file names, safetensors first."""
    hub = tag_cfg.get("hf_hub")
    if not hub:
        return None
    repo, _, filename = hub.strip().rpartition("/")
    if not filename:
        return repo, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename.endswith((".bin", ".pth")):
        return repo, [filename[:-4] + ".safetensors", filename]
    return repo, [filename]


def look_for_weights(
    tag_cfg: dict, cache_dir: Path | None, sha256: str | None = None
) -> tuple[LocalWeights | None, list[str]]:
    """The first weights file found for a tag, and the places looked in (for messages). One in
    LocDiff's download folder is checked first (see the module docstring): raises
    :class:`~locdiff_core.verified_file.DamagedFileError` when its sha256 is wrong."""
    places: list[str] = []
    hf = hf_files(tag_cfg)
    if hf is not None:
        repo, names = hf
        folder = (cache_dir or default_cache_dir()) / repo
        for name in names:
            if (folder / name).is_file():
                known = expected_checksum(repo, name, sha256)
                checked = check_file(folder / name, known.sha256 if known else None)
                return LocalWeights(folder / name, checked), places
        places.append(f"{folder} ({', '.join(names)})")
        try:
            from huggingface_hub import try_to_load_from_cache
            from huggingface_hub.constants import HF_HUB_CACHE
        except ImportError:
            places.append("the Hugging Face cache (huggingface_hub is not installed)")
        else:
            for name in names:
                hit = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
                if isinstance(hit, str):
                    return LocalWeights(Path(hit)), places
            places.append(f"the Hugging Face cache {cache_dir or HF_HUB_CACHE} ({repo})")
    url = tag_cfg.get("url")
    if url:
        folder = cache_dir or Path("~/.cache/clip").expanduser()
        path = folder / os.path.basename(url)
        if path.is_file():
            return LocalWeights(path), places
        places.append(f"open_clip's download folder {folder} ({path.name})")
    return None, places


def find_tag_weights(
    tag_cfg: dict, model: str, pretrained: str, cache_dir: Path | None, sha256: str | None = None
) -> LocalWeights:
    """:func:`look_for_weights`, raising :class:`WeightsNotFoundError` when nothing is found
    and :class:`DamagedWeightsError` for a damaged file, both saying what to run."""
    try:
        found, places = look_for_weights(tag_cfg, cache_dir, sha256)
    except DamagedFileError as exc:
        raise damaged(model, pretrained, cache_dir, exc) from exc
    if found is None:
        raise not_found(model, pretrained, cache_dir, places)
    return found


def download_command(model: str, pretrained: str, cache_dir: Path | None) -> str:
    """The command line that downloads the weights of ``model`` / ``pretrained``."""
    cmd = f"locdiff download-encoder --model {model} --pretrained {pretrained}"
    return cmd + (f" --cache-dir {cache_dir}" if cache_dir else "")


def not_found(model: str, pretrained: str, cache_dir: Path | None, places: list[str]):
    """The :class:`WeightsNotFoundError` for a tag found nowhere in ``places``."""
    where = "".join(f"\n  - {p}" for p in places)
    return WeightsNotFoundError(
        f"no weights for encoder {model} (pretrained {pretrained!r}) on this computer; looked "
        f"in:{where}\ndownload them once (needs the internet) with:\n"
        f"  {download_command(model, pretrained, cache_dir)}\n"
        "or add --download to locdiff embed / predict / eval; offline, copy the weights file "
        "from another computer and name it with --encoder-weights FILE (locdiff embed: "
        "--weights FILE)"
    )


def damaged(model: str, pretrained: str, cache_dir: Path | None, exc: DamagedFileError):
    """The :class:`DamagedWeightsError` for the damaged file of ``exc``."""
    return DamagedWeightsError(
        f"{exc}; download it again (needs the internet) with:\n"
        f"  {download_command(model, pretrained, cache_dir)} --force"
    )


def reload_hint(model: str, pretrained: str, cache_dir: Path | None) -> str:
    """What to say when downloaded weights cannot be loaded: they may be damaged."""
    return (
        "if it was downloaded, it may be damaged (a download cut short); download it again "
        f"with:\n  {download_command(model, pretrained, cache_dir)} --force"
    )


def no_checksum_hint(model: str, pretrained: str, cache_dir: Path | None) -> str:
    """How to give the sha256 that a server did not send."""
    return (
        "if you have the file's sha256 from its publisher, pass it:\n"
        f"  {download_command(model, pretrained, cache_dir)} --sha256 HEX\n"
        "(or add --sha256 HEX to locdiff embed / predict --download)"
    )


def existing_weights(path: Path, model: str) -> Path:
    """``path`` if it is a file, else the :class:`WeightsNotFoundError` saying so."""
    if not Path(path).is_file():
        raise WeightsNotFoundError(
            f"{path}: weights file of encoder {model} not found; check the path of the weights"
        )
    return Path(path)


def download_tag_weights(
    tag_cfg: dict,
    cache_dir: Path | None,
    progress: Callable[[int, int], None] | None = None,
    endpoint: str | None = None,
    *,
    cancel: Callable[[], bool] | None = None,
    sha256: str | None = None,
) -> Path:
    """Download a tag's weights from its Hugging Face repository (the safetensors file when
    there is one) into LocDiff's download folder; returns the file.

    Verified against ``sha256`` when given, else :data:`KNOWN_FILES`, else the Hub's
    announcement (:func:`~locdiff_core.download.download_verified`), and recorded as verified
    beside the file. ``progress`` and ``cancel`` go to the download: an interrupted or
    cancelled download keeps its part (when the server serves byte ranges) and the next call
    resumes it."""
    hf = hf_files(tag_cfg)
    if hf is None:
        raise ValueError("open_clip names no Hugging Face repository for this tag")
    repo, names = hf
    folder = (cache_dir or default_cache_dir()) / repo
    for name in names:
        known = expected_checksum(repo, name, sha256)
        record_path(folder / name).unlink(missing_ok=True)  # speaks for the old file only
        try:
            verified = download_verified(
                hf_file_url(repo, name, endpoint),
                folder / name,
                sha256=known.sha256 if known else None,
                size=(known.size or None) if known else None,
                progress=progress,
                cancel=cancel,
            )
        except DownloadError as exc:
            if exc.status != 404:
                raise
        else:
            write_record(verified)
            return verified.path
    raise DownloadError(f"{hf_file_url(repo, '', endpoint)}: holds none of {', '.join(names)}")
