"""Downloading one file over HTTP(S): resumable and cancellable, with progress, size and checksum
checks.

Nothing here runs unless a user asked for a download (``locdiff embed --download``, or the app
after asking). The bytes are streamed into a part file beside the destination,
``<dest>.part``, next to a small JSON note ``<dest>.part.json`` naming what the part was started
for (URL, total size, sha256, ETag). Only once the part has the announced size and its sha256
over the whole file is right is it fsynced and renamed to ``dest``, so a failed download never
leaves a partial file under the final name.

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

A part whose sha256 turns out wrong is damaged: it is removed, and :class:`DownloadError` says so.

Hugging Face files are fetched from ``{endpoint}/{repo_id}/resolve/main/{filename}``, where the
endpoint is an argument, else the ``HF_ENDPOINT`` environment variable (the one
``huggingface_hub`` reads, so a mirror configured for it serves us too), else
``https://huggingface.co``. The Hub answers with the file's size and sha256 (``X-Linked-Size``,
``X-Linked-Etag``) before redirecting to its storage; both are checked when present.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from locdiff_core import __version__
from locdiff_core.atomic_file import atomic_write, fsync_dir

HF_ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
PART_SUFFIX = ".part"  # <dest>.part: the bytes received so far
NOTE_SUFFIX = ".part.json"  # <dest>.part.json: what they were received for
_CHUNK = 1 << 20
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


class _CancelledError(Exception):
    """Raised between chunks when ``cancel()`` is true; :func:`download_file` reports it."""


class _PartWriteError(Exception):
    """An ``OSError`` of the part file (its ``__cause__``); :func:`download_file` reports it."""


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
        if _scheme(req.full_url) == "https" and _scheme(newurl) != "https":
            raise DownloadError(
                f"{req.full_url}: the server redirected to {newurl}, from https to an unencrypted "
                "address; refused (the file could be changed on the way)"
            )
        for key in ("X-Linked-Etag", "X-Linked-Size"):
            if headers.get(key):
                self.headers[key] = headers[key]
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme.lower()


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
class _Remote:
    """What the server announced: size (0 when unknown), sha256 and ETag (``None`` when
    unknown), and whether it serves byte ranges."""

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


class _Part:
    """The part file ``<dest>.part`` and its note ``<dest>.part.json``, beside ``dest``."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.path = dest.with_name(dest.name + PART_SUFFIX)
        self.note = dest.with_name(dest.name + NOTE_SUFFIX)

    def size(self) -> int:
        """Bytes in the part file (0 when there is none)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_note(self) -> dict | None:
        """The note, or ``None`` when it is missing or unreadable."""
        try:
            note = json.loads(self.note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        fields_ok = (
            isinstance(note, dict)
            and isinstance(note.get("url"), str)
            and isinstance(note.get("total"), int)
        )
        return note if fields_ok else None

    def write_note(self, url: str, remote: _Remote) -> None:
        """Record what the part is being received for (written atomically)."""
        note = {"url": url, "total": remote.total, "sha256": remote.sha256, "etag": remote.etag}
        try:
            with atomic_write(self.note, text=True) as fh:
                json.dump(note, fh)
        except OSError as exc:
            raise _PartWriteError from exc

    def kept_for(self, url: str, sha256: str | None) -> int:
        """The size of a part that may be resumed for ``url``; 0 (part and note removed) when
        there is none or its note names another URL or sha256."""
        note, size = self.read_note(), self.size()
        usable = (
            note is not None
            and size > 0
            and note.get("url") == url
            and _agree(note.get("sha256"), sha256)
            and size <= (note.get("total") or size)
        )
        if not usable:
            self.remove()
            return 0
        return size

    def matches(self, remote: _Remote) -> bool:
        """Whether the note was written for the file the server announces now."""
        note = self.read_note() or {}
        same_sha = _agree(note.get("sha256"), remote.sha256)
        no_sha = note.get("sha256") is None and remote.sha256 is None
        return (
            _agree(note.get("total") or None, remote.total or None)
            and same_sha
            and (not no_sha or _agree(note.get("etag"), remote.etag))
        )

    def hash_into(self, digest, size: int, cancel: CancelFn | None) -> bool:
        """Feed the first ``size`` bytes of the part to ``digest``; false if it has fewer."""
        try:
            with open(self.path, "rb") as fh:
                while size > 0:
                    if cancel is not None and cancel():
                        raise _CancelledError
                    chunk = fh.read(min(_CHUNK, size))
                    if not chunk:
                        return False
                    digest.update(chunk)
                    size -= len(chunk)
        except OSError as exc:
            raise _PartWriteError from exc
        return True

    def finish(self) -> None:
        """Move the verified part to ``dest`` (fsynced, then ``os.replace``); drop the note."""
        try:
            with open(self.path, "r+b") as fh:
                os.fsync(fh.fileno())
            os.replace(self.path, self.dest)
        except OSError as exc:
            raise _PartWriteError from exc
        fsync_dir(self.dest.parent)
        self.note.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the part and its note (those missing are skipped)."""
        self.path.unlink(missing_ok=True)
        self.note.unlink(missing_ok=True)

    def kept_message(self) -> str:
        """What is kept for a later call, and what to do (for error messages)."""
        size = self.size()
        if not size:
            return "nothing is kept; run the download again"
        total = (self.read_note() or {}).get("total") or 0
        of = f" of {total:,}" if total else ""
        return f"{size:,}{of} bytes are kept in {self.path}; run the download again to resume it"


def _agree(a, b) -> bool:
    """Two announcements agree unless both are known and differ."""
    return a is None or b is None or a == b


@contextlib.contextmanager
def _keep_if(resumable: bool, part: _Part) -> Iterator[None]:
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
        raise _PartWriteError from exc


def _open_part(part: _Part, append: bool) -> int:
    """The part file's descriptor, for appending or truncated to nothing."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        return os.open(part.path, flags, 0o644)
    except OSError as exc:
        raise _PartWriteError from exc


def _stream(response, part: _Part, start: int, digest, total: int, progress, cancel) -> int:
    """Append the body of ``response`` to the part (truncated first when ``start`` is 0);
    returns the part's size. :meth:`_Part.finish` fsyncs it."""
    fd, done = _open_part(part, append=bool(start)), start
    try:
        while True:
            if cancel is not None and cancel():
                raise _CancelledError
            chunk = response.read(_CHUNK)
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


def _check(url: str, part: _Part, done: int, digest, remote: _Remote, sha256) -> None:
    """Raise :class:`DownloadError` unless the part has the announced size and sha256; a part
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
            f"{url}: received {done:,} bytes, more than the {total:,} announced; the download "
            "is damaged and was removed, run it again"
        )
    if expected and digest.hexdigest() != expected:
        part.remove()
        source = "expected" if sha256 else "the server announced"
        raise DownloadError(
            f"{url}: the file's sha256 is {digest.hexdigest()}, {source} {expected}; the "
            "download is damaged and was removed, run it again"
        )


def _open(url: str, start: int, notes: _RedirectNotes, timeout: float):
    """Send the request (from byte ``start`` when it is not 0); returns the response."""
    headers = {"User-Agent": f"locdiff/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    opener = urllib.request.build_opener(notes)
    return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)


def _finish_complete_part(
    part: _Part, start: int, exc: urllib.error.HTTPError, notes, sha256, progress, cancel
) -> bool:
    """After a 416 to ``Range: bytes=<start>-``: rename the part if it is the whole, verified
    file; false when it is not (the caller starts from zero)."""
    match = _UNSATISFIED_RANGE.match(exc.headers.get("Content-Range", "").strip())
    total = int(match[1]) if match else _linked_size(exc.headers, notes.headers)
    note = part.read_note() or {}
    remote = _Remote(
        total or note.get("total") or 0,
        _announced_sha(exc.headers, notes.headers, sha256) or note.get("sha256"),
        None,
        True,
    )
    if remote.total != start or not part.matches(remote):
        return False
    if progress is not None:
        progress(start, start)
    digest = hashlib.sha256()
    if not part.hash_into(digest, start, cancel):
        return False
    if remote.sha256 and digest.hexdigest() != remote.sha256:
        return False
    part.finish()
    return True


def _attempt(url: str, part: _Part, start: int, sha256, progress, cancel, timeout) -> bool:
    """One request, resuming from ``start`` kept bytes; false when the kept part does not fit
    what the server sends (the caller then removes it and starts from zero)."""
    notes = _RedirectNotes()
    try:
        response = _open(url, start, notes, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not start:
            raise
        with contextlib.closing(exc):
            return _finish_complete_part(part, start, exc, notes, sha256, progress, cancel)
    with response:
        _refuse_web_page(url, response)
        remote, offset = _remote(response, notes.headers, sha256)
        if offset is None or offset not in (0, start) or (offset and not part.matches(remote)):
            if not start:
                raise DownloadError(
                    f"{url}: the server answered {response.status} with Content-Range "
                    f"{response.headers.get('Content-Range')!r} to a request for the whole file"
                )
            return False
        digest = hashlib.sha256()
        with _keep_if(remote.ranges, part):
            if offset == 0:
                part.write_note(url, remote)
            if progress is not None:
                progress(offset, remote.total)
            if offset and not part.hash_into(digest, offset, cancel):
                return False
            done = _stream(response, part, offset, digest, remote.total, progress, cancel)
            _check(url, part, done, digest, remote, sha256)
    part.finish()
    return True


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` into ``dest`` (folders created), resuming a kept part, and return ``dest``.

    The size is checked against ``Content-Length`` (``Content-Range`` when resuming) or
    ``X-Linked-Size``, the sha256 over the whole file against ``sha256`` or the server's
    ``X-Linked-Etag``. ``progress(done, total)`` counts the kept bytes too; ``cancel()`` is
    asked between chunks. Raises :class:`DownloadCancelled` when cancelled and
    :class:`DownloadError` when the download fails (its message says what is kept for the next
    call); ``dest`` is only ever replaced by the complete, verified file. An exception raised
    by ``progress`` (e.g. ``KeyboardInterrupt``) aborts the same way and passes through.
    """
    if sha256 is not None and not _SHA256.match(sha256.lower()):
        raise ValueError(f"sha256 {sha256!r} is not 64 hexadecimal digits; pass the file's sha256")
    sha256 = sha256.lower() if sha256 else None
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _Part(dest)
    try:
        start = part.kept_for(url, sha256)
        while not _attempt(url, part, start, sha256, progress, cancel, timeout):
            assert start, "only a resumed attempt asks to start over"
            part.remove()
            start = 0
    except _CancelledError:
        raise DownloadCancelled(
            f"{url}: download cancelled; {part.kept_message()}", part.size()
        ) from None
    except _PartWriteError as exc:
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
    return dest
