"""Downloading one file over HTTP(S): atomically, with progress, size and checksum checks.

Nothing here runs unless a user asked for a download (``locdiff embed --download``, or the app
after asking). The file is streamed into a hidden temporary file beside the destination and
renamed only once it is complete and verified, so an aborted or failed download never leaves a
partial file under the final name.

Hugging Face files are fetched from ``{endpoint}/{repo_id}/resolve/main/{filename}``, where the
endpoint is an argument, else the ``HF_ENDPOINT`` environment variable (the one
``huggingface_hub`` reads, so a mirror configured for it serves us too), else
``https://huggingface.co``. The Hub answers with the file's size and sha256 (``X-Linked-Size``,
``X-Linked-Etag``) before redirecting to its storage; both are checked when present.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from locdiff_core import __version__
from locdiff_core.atomic_file import atomic_write

HF_ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes in total or 0 when unknown)


class DownloadError(OSError):
    """A download that did not complete; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def hf_endpoint(endpoint: str | None = None) -> str:
    """The Hugging Face endpoint in use: ``endpoint``, else ``$HF_ENDPOINT``, else the Hub."""
    return (endpoint or os.environ.get(HF_ENDPOINT_ENV) or DEFAULT_HF_ENDPOINT).rstrip("/")


def hf_file_url(repo_id: str, filename: str, endpoint: str | None = None) -> str:
    """The download address of ``filename`` in the Hugging Face repository ``repo_id``."""
    return f"{hf_endpoint(endpoint)}/{repo_id}/resolve/main/{urllib.parse.quote(filename)}"


class _RedirectNotes(urllib.request.HTTPRedirectHandler):
    """Keeps the headers of redirect responses: the Hub states size and sha256 only there."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        for key in ("X-Linked-Etag", "X-Linked-Size"):
            if headers.get(key):
                self.headers[key] = headers[key]
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _expected(headers, notes: dict[str, str], sha256: str | None) -> tuple[int, str | None]:
    """The file's size (0 when unknown) and sha256 (``None`` when unknown)."""
    sizes = (
        headers.get("Content-Length"),
        headers.get("X-Linked-Size"),
        notes.get("X-Linked-Size"),
    )
    total = next((int(s) for s in sizes if s and s.isdigit()), 0)
    etag = (headers.get("X-Linked-Etag") or notes.get("X-Linked-Etag") or "").strip('"W/ ').lower()
    return total, sha256 or (etag if _SHA256.match(etag) else None)


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    progress: ProgressFn | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` into ``dest`` (folders created) and return ``dest``.

    The size is checked against ``Content-Length`` and the sha256 against ``sha256`` or the
    server's ``X-Linked-Etag``. Raises :class:`DownloadError` (nothing is left under ``dest``
    then); an exception raised by ``progress`` (e.g. ``KeyboardInterrupt``) aborts the same way.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    notes = _RedirectNotes()
    opener = urllib.request.build_opener(notes)
    request = urllib.request.Request(url, headers={"User-Agent": f"locdiff/{__version__}"})
    try:
        with opener.open(request, timeout=timeout) as response:
            total, expected_sha = _expected(response.headers, notes.headers, sha256)
            digest, done = hashlib.sha256(), 0
            with atomic_write(dest) as fh:
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                if total and done != total:
                    raise DownloadError(
                        f"{url}: received {done:,} of {total:,} bytes; the connection broke, "
                        "run the download again"
                    )
                if expected_sha and digest.hexdigest() != expected_sha:
                    raise DownloadError(
                        f"{url}: the file's sha256 is {digest.hexdigest()}, the server announced "
                        f"{expected_sha}; the download is damaged, run it again"
                    )
    except urllib.error.HTTPError as exc:
        raise DownloadError(
            f"{url}: the server answered {exc.code} {exc.reason}", exc.code
        ) from exc
    except urllib.error.URLError as exc:
        raise DownloadError(
            f"{url}: cannot connect ({exc.reason}); check the network connection or set "
            f"{HF_ENDPOINT_ENV} to a reachable mirror"
        ) from exc
    except (http.client.HTTPException, TimeoutError, ConnectionError) as exc:
        raise DownloadError(
            f"{url}: the download broke off ({type(exc).__name__}: {exc}); run it again"
        ) from exc
    return dest
