"""Downloading one file over HTTP(S): resumable and cancellable, with progress, and accepted only
once its size and sha256 are verified.

Nothing here runs unless a user asked for a download (``locdiff embed --download``, or the app
after asking). A file is accepted only against a sha256 known before its bytes arrive: the
caller's ``sha256`` (a table of known files, or the user's ``--sha256``), else the server's (the
Hub's ``X-Linked-Etag``). Without one the download is refused before anything is stored
(:class:`ChecksumUnknownError`), since a body cut short without a ``Content-Length``, or an
error page, would otherwise look complete. The size is checked against the caller's ``size``,
``Content-Length`` (``Content-Range`` when resuming) and ``X-Linked-Size``, those that are
known, which must agree; the sha256 over the whole file settles it in any case.
``require_sha256=False`` (a checkpoint address that names no checksum) still refuses a file
whose size nobody announces.

The bytes are streamed into a part file beside the destination, ``<dest>.part``, next to a
small JSON note ``<dest>.part.json`` naming what the part was started for (URL, total size,
sha256, ETag) (:mod:`locdiff_core.download_part`). Only once the part has the expected size and
sha256 is it fsynced and renamed to ``dest``, so a failed download never leaves a partial file
under the final name. Each call first removes what a killed download of ``dest`` left besides
its part (hidden ``.tmp`` files of atomic writes, ``<dest>.tmp``).

When a download breaks off, is cancelled (``cancel()`` returned true), fails to write, or its
``progress`` callback raises, the part and its note are kept if the server can serve byte
ranges (it sent ``Accept-Ranges: bytes``, or answered a range request with 206); otherwise they
are removed, as no later call could use them. The next call for the same ``dest`` and URL sends
``Range: bytes=<kept size>-``, and the answer decides:

- 206 whose ``Content-Range`` starts at the kept size, for the same size and sha256 (or, when no
  sha256 is known, the same ETag) as the note: the kept bytes are hashed, the rest appended;
- 200 (the server ignores ``Range``): the part is truncated and the download starts from zero;
- 416: the part is verified as the complete file and renamed; if it is not, the download starts
  from zero;
- a note naming another URL, size or sha256, a part larger than its total, a part without its
  note, or a 206 at another place: the part is removed and the download starts from zero.

A part whose sha256 turns out wrong is damaged: it is removed (never resumed from), and
:class:`DownloadError` says so, naming the URL and the file.

An https address is never followed to plain http (a redirect there is refused). Hugging Face
files are fetched from ``{endpoint}/{repo_id}/resolve/main/{filename}``, where the endpoint is
an argument, else the ``HF_ENDPOINT`` environment variable (the one ``huggingface_hub`` reads,
so a mirror configured for it serves us too), else ``https://huggingface.co``. The Hub answers
with the file's size and sha256 (``X-Linked-Size``, ``X-Linked-Etag``) before redirecting to
its storage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locdiff_core import __version__
from locdiff_core.download_part import CHUNK, PartFile, PartWriteError, StopRequested, agree
from locdiff_core.verified_file import VerifiedFile

HF_ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-\d+/(\d+|\*)$")  # of a 206
_UNSATISFIED_RANGE = re.compile(r"^bytes\s+\*/(\d+)$")  # of a 416

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes in total or 0 when unknown)
CancelFn = Callable[[], bool]  # true: stop between two chunks


class DownloadError(OSError):
    """A download that did not complete; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DownloadCancelled(DownloadError):  # noqa: N818 (names what happened: not a fault)
    """``cancel()`` returned true; ``kept`` bytes stay in the part file for a later call."""

    def __init__(self, message: str, kept: int = 0) -> None:
        super().__init__(message)
        self.kept = kept


class ChecksumUnknownError(DownloadError):
    """Refused before anything was stored: neither the caller nor the server knows the file's
    sha256 (or, with ``require_sha256=False``, its size)."""


def hf_endpoint(endpoint: str | None = None) -> str:
    """The Hugging Face endpoint in use: ``endpoint``, else ``$HF_ENDPOINT``, else the Hub."""
    return (endpoint or os.environ.get(HF_ENDPOINT_ENV) or DEFAULT_HF_ENDPOINT).rstrip("/")


def hf_file_url(repo_id: str, filename: str, endpoint: str | None = None) -> str:
    """The download address of ``filename`` in the Hugging Face repository ``repo_id``."""
    return f"{hf_endpoint(endpoint)}/{repo_id}/resolve/main/{urllib.parse.quote(filename)}"


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme.lower()


def _refuse_downgrade(url: str, to: str) -> None:
    if _scheme(url) == "https" and _scheme(to) != "https":
        raise DownloadError(
            f"{url}: the server redirected to {to}, from https to an unencrypted address; "
            "refused (the file could be changed on the way)"
        )


class _RedirectNotes(urllib.request.HTTPRedirectHandler):
    """Keeps the headers of redirect responses (the Hub states size and sha256 only there) and
    refuses a redirect from https to plain http."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _refuse_downgrade(req.full_url, newurl)
        for key in ("X-Linked-Etag", "X-Linked-Size"):
            if headers.get(key):
                self.headers[key] = headers[key]
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _refuse_web_page(url: str, response) -> None:
    """A model file is never HTML: a login page, an error page or a portal's answer must not
    be stored as weights."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        raise DownloadError(
            f"{url}: the server answered with a web page ({kind}), not the file; check the "
            "address (a sign-in or error page, or a proxy's notice)"
        )


@dataclass(frozen=True)
class _Wanted:
    """What the caller knows of the file: its sha256 and size (``None`` when unknown), and
    whether a sha256 is required."""

    sha256: str | None
    size: int | None
    require_sha256: bool


@dataclass(frozen=True)
class _Remote:
    """What is expected of the file: size (0 when unknown), sha256 and ETag (``None`` when
    unknown), and whether the server serves byte ranges."""

    total: int
    sha256: str | None
    etag: str | None
    ranges: bool


def _linked_size(headers, notes: dict[str, str]) -> int:
    """The Hub's ``X-Linked-Size`` from the response or a redirect before it (0 when none)."""
    sizes = (headers.get("X-Linked-Size"), notes.get("X-Linked-Size"))
    return next((int(s) for s in sizes if s and s.isdigit()), 0)


def _announced_sha(headers, notes: dict[str, str], sha256: str | None) -> str | None:
    """``sha256`` when the caller knows it, else the Hub's ``X-Linked-Etag`` if it is one."""
    etag = (headers.get("X-Linked-Etag") or notes.get("X-Linked-Etag") or "").strip('"W/ ').lower()
    return sha256 or (etag if _SHA256.match(etag) else None)


def _remote(response, notes: dict[str, str], sha256: str | None) -> tuple[_Remote, int | None]:
    """What ``response`` announces, and where its body starts in the file (``None`` for a 206
    without a usable ``Content-Range``)."""
    headers = response.headers
    offset, total = 0, 0
    if response.status == 206:
        match = _CONTENT_RANGE.match(headers.get("Content-Range", "").strip())
        if match is None:
            return _Remote(0, None, None, True), None
        offset, total = int(match[1]), int(match[2]) if match[2].isdigit() else 0
    else:
        length = headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else 0
    ranges = response.status == 206 or "bytes" in headers.get("Accept-Ranges", "").lower()
    remote = _Remote(
        total or _linked_size(headers, notes),
        _announced_sha(headers, notes, sha256),
        headers.get("ETag") or None,
        ranges,
    )
    return remote, offset


def _settle(url: str, part: PartFile, remote: _Remote, want: _Wanted) -> _Remote:
    """``remote`` with the caller's size; raises when it contradicts the size the caller
    knows, or when the file cannot be verified (:class:`ChecksumUnknownError`)."""
    if want.size and remote.total and remote.total != want.size:
        raise DownloadError(
            f"{url}: the server announces {remote.total:,} bytes, but the file is known to have "
            f"{want.size:,}; refused, nothing was saved to {part.dest} (another file, or a "
            "damaged mirror: check the address)"
        )
    remote = dataclasses.replace(remote, total=remote.total or want.size or 0)
    if remote.sha256 is None and (want.require_sha256 or not remote.total):
        missing = "no sha256" + ("" if remote.total else " and no size")
        raise ChecksumUnknownError(
            f"{url}: the server sent {missing} of the file (no X-Linked-Etag), so a download "
            f"cut short or an error page could not be told from the real file; refused, "
            f"nothing was saved to {part.dest}. Give the file's sha256 (64 hexadecimal digits, "
            "as its publisher lists it) to download it"
        )
    return remote


@contextlib.contextmanager
def _keep_if(resumable: bool, part: PartFile) -> Iterator[None]:
    """On any exception, keep the part for a later call when the server can resume it and it
    holds bytes; else remove it and its note (no later call could use them)."""
    try:
        yield
    except BaseException:
        if not resumable or not part.size():
            part.remove()
        raise


def _write(fd: int, chunk: bytes) -> None:
    """Write all of ``chunk`` to the part file's descriptor."""
    view = memoryview(chunk)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise PartWriteError from exc


def _stream(response, part: PartFile, start: int, digest, total: int, progress, cancel) -> int:
    """Append the body of ``response`` to the part (truncated first when ``start`` is 0);
    returns the part's size. :meth:`PartFile.finish` fsyncs it."""
    fd, done = part.open(append=bool(start)), start
    try:
        while True:
            if cancel is not None and cancel():
                raise StopRequested
            chunk = response.read(CHUNK)
            if not chunk:
                break
            _write(fd, chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    finally:
        os.close(fd)
    return done


def _check(url: str, part: PartFile, done: int, digest, remote: _Remote, want: _Wanted) -> None:
    """Raise :class:`DownloadError` unless the part has the expected size and sha256; a part
    too long or with the wrong sha256 is removed, a short one is kept if the server can resume
    it."""
    total, expected = remote.total, remote.sha256
    if total and done < total:
        if not remote.ranges:
            part.remove()  # no later call could resume it
        raise DownloadError(
            f"{url}: received {done:,} of {total:,} bytes; the connection broke, "
            + part.kept_message()
        )
    if total and done > total:
        part.remove()
        raise DownloadError(
            f"{url}: received {done:,} bytes, more than the {total:,} expected; the download "
            f"is damaged and was removed (nothing was saved to {part.dest}), run it again"
        )
    if expected and digest.hexdigest() != expected:
        part.remove()
        source = "expected" if want.sha256 else "the server announced"
        raise DownloadError(
            f"{url}: the file's sha256 is {digest.hexdigest()}, {source} {expected}; the "
            f"download is damaged and was removed (nothing was saved to {part.dest}), run it "
            "again"
        )


def _open(url: str, start: int, notes: _RedirectNotes, timeout: float):
    """Send the request (from byte ``start`` when it is not 0); returns the response."""
    headers = {"User-Agent": f"locdiff/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    opener = urllib.request.build_opener(notes)
    response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    try:
        _refuse_downgrade(url, response.geturl())
    except DownloadError:
        response.close()
        raise
    return response


def _finish_complete_part(
    part: PartFile, start: int, exc: urllib.error.HTTPError, notes, want: _Wanted, progress, cancel
) -> VerifiedFile | None:
    """After a 416 to ``Range: bytes=<start>-``: rename the part if it is the whole, verified
    file; ``None`` when it is not (the caller starts from zero)."""
    match = _UNSATISFIED_RANGE.match(exc.headers.get("Content-Range", "").strip())
    total = int(match[1]) if match else _linked_size(exc.headers, notes.headers)
    note = part.read_note() or {}
    sha256 = _announced_sha(exc.headers, notes.headers, want.sha256) or note.get("sha256")
    total = total or note.get("total") or want.size or 0
    if not sha256 or total != start or not agree(want.size, total):
        return None
    if not part.matches(total, sha256, None):
        return None
    if progress is not None:
        progress(start, start)
    digest = hashlib.sha256()
    if not part.hash_into(digest, start, cancel) or digest.hexdigest() != sha256:
        return None
    part.finish()
    return VerifiedFile(part.dest, start, sha256)


def _attempt(
    url: str, part: PartFile, start: int, want: _Wanted, progress, cancel, timeout
) -> VerifiedFile | None:
    """One request, resuming from ``start`` kept bytes; ``None`` when the kept part does not
    fit what the server sends (the caller then removes it and starts from zero)."""
    notes = _RedirectNotes()
    try:
        response = _open(url, start, notes, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not start:
            raise
        with contextlib.closing(exc):
            return _finish_complete_part(part, start, exc, notes, want, progress, cancel)
    with response:
        _refuse_web_page(url, response)
        remote, offset = _remote(response, notes.headers, want.sha256)
        fits = offset is not None and offset in (0, start)
        if not fits or (offset and not part.matches(remote.total, remote.sha256, remote.etag)):
            if not start:
                raise DownloadError(
                    f"{url}: the server answered {response.status} with Content-Range "
                    f"{response.headers.get('Content-Range')!r} to a request for the whole file"
                )
            return None
        remote = _settle(url, part, remote, want)
        digest = hashlib.sha256()
        with _keep_if(remote.ranges, part):
            if offset == 0:
                part.write_note(url, remote.total, remote.sha256, remote.etag)
            if progress is not None:
                progress(offset, remote.total)
            if offset and not part.hash_into(digest, offset, cancel):
                return None
            done = _stream(response, part, offset, digest, remote.total, progress, cancel)
            _check(url, part, done, digest, remote, want)
    part.finish()
    return VerifiedFile(part.dest, done, digest.hexdigest())


def download_verified(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    require_sha256: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    timeout: float = 60.0,
) -> VerifiedFile:
    """Fetch ``url`` into ``dest`` (folders created), resuming a kept part; returns ``dest``
    with the size and sha256 it was verified to have.

    The sha256 over the whole file is checked against ``sha256``, else the server's
    ``X-Linked-Etag``; with neither the download is refused (:class:`ChecksumUnknownError`)
    unless ``require_sha256`` is false and a size is known. The size is checked against
    ``size``, ``Content-Length`` (``Content-Range`` when resuming) and ``X-Linked-Size``.
    ``progress(done, total)`` counts the kept bytes too; ``cancel()`` is asked between chunks.
    Raises :class:`DownloadCancelled` when cancelled and :class:`DownloadError` when the
    download fails (its message says what is kept for the next call); ``dest`` is only ever
    replaced by the complete, verified file. An exception raised by ``progress`` (e.g.
    ``KeyboardInterrupt``) aborts the same way and passes through.
    """
    if sha256 is not None and not _SHA256.match(sha256.lower()):
        raise ValueError(f"sha256 {sha256!r} is not 64 hexadecimal digits; pass the file's sha256")
    if size is not None and size <= 0:
        raise ValueError(f"size {size!r} is not a positive number of bytes")
    want = _Wanted(sha256.lower() if sha256 else None, size, require_sha256)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = PartFile(dest)
    try:
        part.sweep_temps()
        start = part.kept_for(url, want.sha256, want.size)
        while (done := _attempt(url, part, start, want, progress, cancel, timeout)) is None:
            assert start, "only a resumed attempt asks to start over"
            part.remove()
            start = 0
    except StopRequested:
        raise DownloadCancelled(
            f"{url}: download cancelled; {part.kept_message()}", part.size()
        ) from None
    except PartWriteError as exc:
        error = exc.__cause__
        reason = getattr(error, "strerror", None) or error
        raise DownloadError(
            f"{url}: cannot save into folder {dest.parent} ({reason}); free some space there, "
            f"check its permissions or choose another folder; {part.kept_message()}"
        ) from error
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
            f"{url}: the download broke off ({type(exc).__name__}: {exc}); " + part.kept_message()
        ) from exc
    return done


def download_file(url: str, dest: str | os.PathLike, **options: Any) -> Path:
    """:func:`download_verified` (same options), returning only the path of the file."""
    return download_verified(url, dest, **options).path
