"""Downloading a model checkpoint from a URL (the first-run "Download weights" choice).

The transfer is :func:`locdiff_core.download.download_file` (streamed into a temporary file,
size-checked, renamed into place only when complete); this adds where the app keeps models and
a cancel check for the progress dialog. A cancelled or failed download leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from app.settings import data_dir
from locdiff_core.download import DownloadError, download_file


class DownloadCancelledError(Exception):
    pass


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
    fails, and
    :class:`DownloadCancelledError` when ``cancelled()`` turns true; ``dest`` is untouched then.
    """
    if not url:
        raise ValueError("no model download URL is set; enter one in Settings")

    def report(done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise DownloadCancelledError(f"download of {url} cancelled")
        if progress is not None:
            progress(done, total)

    try:
        return download_file(url, dest, progress=report, timeout=timeout_s)
    except DownloadError as exc:
        raise ValueError(f"could not download the model: {exc}; check the URL in Settings") from exc
    except OSError as exc:  # the disk side: full, read-only, no permission
        raise ValueError(f"could not save the model to {dest}: {exc.strerror or exc}") from exc
