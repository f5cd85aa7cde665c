"""Downloading a model checkpoint from a URL (the first-run "Download model" choice).

Qt-free: plain ``urllib`` with a progress callback and a cancel check; the window runs it on a
pool thread behind a progress dialog. The file is written atomically
(:func:`locdiff_core.atomic_file.atomic_write`): a cancelled or broken download leaves nothing
behind, and a complete one replaces the previous file in one step.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from app.settings import data_dir
from locdiff_core.atomic_file import atomic_write

BLOCK = 1 << 16


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

    Raises ``ValueError`` with the reason (and what to check) when the download fails, and
    :class:`DownloadCancelledError` when ``cancelled()`` turns true; ``dest`` is untouched then.
    """
    if not url:
        raise ValueError("no model download URL is set; enter one in Settings > Model")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            with atomic_write(dest) as fh:
                while block := response.read(BLOCK):
                    if cancelled is not None and cancelled():
                        raise DownloadCancelledError(f"download of {url} cancelled")
                    fh.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
                if total and done != total:
                    raise ValueError(
                        f"the download of {url} stopped after {done:,} of {total:,} bytes; "
                        "try again"
                    )
    except urllib.error.HTTPError as exc:
        raise ValueError(
            f"could not download {url}: the server answered {exc.code} {exc.reason}; "
            "check the model download URL in Settings"
        ) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(
            f"could not download {url}: {reason}; check the network and the URL in Settings"
        ) from exc
    return dest
