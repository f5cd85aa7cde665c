"""Downloading a model checkpoint from a URL (the first-run "Download weights" choice).

The transfer is :func:`locdiff_core.download.download_file`: streamed into ``<dest>.part``
(with a note ``<dest>.part.json``), size-checked (and sha256-checked when the server announces
one; a model address from Settings names no checksum, so a server that announces neither size
nor sha256 is refused), and renamed to ``dest`` only when complete, so ``dest`` is never a
partial file. This adds
where the app keeps models and the cancel check of the progress dialog. A cancelled or broken
download keeps its part when the server can serve byte ranges, and the next download of the
same URL to the same place resumes it; with a server that cannot, the part is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from app.model.settings import data_dir
from locdiff_core.download import DownloadCancelled, DownloadError, download_file


class DownloadCancelledError(OSError):
    """The user cancelled; the message says what was kept for the next try."""


def model_destination(url: str) -> Path:
    """Where a checkpoint downloaded from ``url`` is kept: ``<data dir>/models/<file name>``."""
    name = Path(urlparse(url).path).name or "checkpoint.safetensors"
    if not name.endswith(".safetensors"):
        name += ".safetensors"
    return data_dir() / "models" / name


def download(
    url: str,
    dest: Path,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    timeout_s: float = 30.0,
) -> Path:
    """Fetch ``url`` into ``dest``; ``progress(bytes done, bytes total or 0)``.

    Raises ``ValueError`` with the reason (and what to check) when the download or the saving
    fails, and :class:`DownloadCancelledError` when ``cancelled()`` turns true; ``dest`` is
    untouched then (what arrived may be kept beside it, see the module docstring).
    """
    if not url:
        raise ValueError("no model download URL is set; enter one in Settings")
    try:
        return download_file(
            url, dest, require_sha256=False, progress=progress, cancel=cancelled, timeout=timeout_s
        )
    except DownloadCancelled as exc:
        raise DownloadCancelledError(str(exc)) from exc
    except DownloadError as exc:
        raise ValueError(f"could not download the model: {exc}; check the URL in Settings") from exc
    except OSError as exc:  # the disk side: full, read-only, no permission
        raise ValueError(f"could not save the model to {dest}: {exc.strerror or exc}") from exc
