"""Where image-encoder weights live, and fetching them (see :mod:`locdiff_core.image_encoder`).

Weights of an open_clip pretrained tag are looked for offline, in this order:

1. LocDiff's download folder: ``cache_dir``, else ``$LOCDIFF_CACHE_DIR``, else the per-user cache
   folder, then ``<Hugging Face repo id>/<file name>`` (where :func:`download_tag_weights` writes);
2. the Hugging Face cache (``cache_dir`` when given, else ``$HF_HUB_CACHE``), where open_clip
   itself downloads;
3. open_clip's URL cache (``cache_dir``, else ``~/.cache/clip``) for tags with a direct URL.

Functions take open_clip's pretrained config of the tag (``tag_cfg``: ``hf_hub``, ``url``), so
this module needs no open_clip itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import platformdirs

from locdiff_core.download import DownloadError, download_file, hf_file_url

CACHE_ENV = "LOCDIFF_CACHE_DIR"


class WeightsNotFoundError(FileNotFoundError):
    """No weights on this computer; the message names the model, where it looked, and the
    command that downloads them."""


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


def look_for_weights(tag_cfg: dict, cache_dir: Path | None) -> tuple[Path | None, list[str]]:
    """The first weights file found for a tag, and the places looked in (for messages)."""
    places: list[str] = []
    hf = hf_files(tag_cfg)
    if hf is not None:
        repo, names = hf
        folder = (cache_dir or default_cache_dir()) / repo
        for name in names:
            if (folder / name).is_file():
                return folder / name, places
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
                    return Path(hit), places
            places.append(f"the Hugging Face cache {cache_dir or HF_HUB_CACHE} ({repo})")
    url = tag_cfg.get("url")
    if url:
        folder = cache_dir or Path("~/.cache/clip").expanduser()
        path = folder / os.path.basename(url)
        if path.is_file():
            return path, places
        places.append(f"open_clip's download folder {folder} ({path.name})")
    return None, places


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
) -> Path:
    """Download a tag's weights from its Hugging Face repository (the safetensors file when
    there is one) into LocDiff's download folder; returns the file.

    ``progress`` and ``cancel`` go to :func:`~locdiff_core.download.download_file`: an
    interrupted or cancelled download keeps its part (when the server serves byte ranges) and
    the next call resumes it."""
    hf = hf_files(tag_cfg)
    if hf is None:
        raise ValueError("open_clip names no Hugging Face repository for this tag")
    repo, names = hf
    folder = (cache_dir or default_cache_dir()) / repo
    for name in names:
        try:
            return download_file(
                hf_file_url(repo, name, endpoint), folder / name, progress=progress, cancel=cancel
            )
        except DownloadError as exc:
            if exc.status != 404:
                raise
    raise DownloadError(f"{hf_file_url(repo, '', endpoint)}: holds none of {', '.join(names)}")
