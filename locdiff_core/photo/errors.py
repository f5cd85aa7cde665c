"""Typed per-file failures and the batch loop that never stops on one bad file.

Every function in :mod:`locdiff_core.photo` that works on one file raises :class:`PhotoError`
(never a bare ``OSError`` or a library's own exception); the batch functions turn each file into a
:class:`FileResult` holding either a value or that error, so one broken photo in a library of
thousands is reported and skipped. :func:`os_error` says what an operating-system error means;
what the image libraries raise is told in plain words by :mod:`locdiff_core.photo.read_errors`.
"""

from __future__ import annotations

import enum
import errno
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]  # (files done, files in total)
CancelledFn = Callable[[], bool]


class PhotoErrorKind(enum.Enum):
    """What went wrong with one file; the message says which file and how to fix it."""

    NOT_FOUND = "not found"
    UNREADABLE = "unreadable"
    NOT_AN_IMAGE = "not an image"
    SPECIAL_FILE = "special file"  # a FIFO, socket or device: refused before it is opened
    UNSUPPORTED = "unsupported format"
    CORRUPT = "corrupt"
    TOO_LARGE = "too large"
    NO_GPS = "no GPS"
    INVALID_GPS = "invalid GPS"
    READ_ONLY = "read-only"
    DISK_FULL = "disk full"
    WRITE_FAILED = "write failed"
    NO_WRITER = "no writer"
    NOTHING_TO_UNDO = "nothing to undo"
    CANCELLED = "cancelled"


class PhotoError(Exception):
    """A failure tied to one file: ``kind`` for programs, ``message`` for people."""

    def __init__(self, kind: PhotoErrorKind, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.kind = kind
        self.path = Path(path)
        self.message = message


@dataclass(frozen=True)
class FileResult(Generic[T]):
    """The outcome for one file of a batch: ``value`` on success, ``error`` otherwise."""

    path: Path
    value: T | None = None
    error: PhotoError | None = None
    warning: str | None = None  # success with a caveat, e.g. "wrote an XMP sidecar instead"

    @property
    def ok(self) -> bool:
        return self.error is None


_ERRNO_TEXT = {
    errno.EIO: "the disk reported an input/output error while {doing}; the card or drive may be "
    "failing or was unplugged",
    errno.ENAMETOOLONG: "the file's name or folder path is too long while {doing}; move it to "
    "a folder with a shorter path",
    errno.ELOOP: "its symbolic links go round in a loop while {doing}",
    errno.EMFILE: "too many files are open while {doing}; close some programs and try again",
    errno.ENFILE: "too many files are open while {doing}; close some programs and try again",
    errno.EBUSY: "the file is in use by another program while {doing}; close it and try again",
    errno.ETIMEDOUT: "the drive did not answer in time while {doing}; check the network "
    "connection and try again",
    errno.ESTALE: "the network drive lost the file while {doing}; open the folder again",
    errno.ENXIO: "the drive is gone while {doing}; plug the card or drive in again",
    errno.ENODEV: "the drive is gone while {doing}; plug the card or drive in again",
}


def os_error(
    path: Path | str,
    exc: OSError,
    doing: str,
    *,
    kind: PhotoErrorKind = PhotoErrorKind.WRITE_FAILED,
) -> PhotoError:
    """An ``OSError`` raised while ``doing`` something to ``path``, as a :class:`PhotoError`
    with a plain message; ``kind`` is the kind of an error no rule here names."""
    if isinstance(exc, FileNotFoundError):
        return PhotoError(PhotoErrorKind.NOT_FOUND, path, f"file not found while {doing}")
    if isinstance(exc, IsADirectoryError):
        return PhotoError(PhotoErrorKind.NOT_AN_IMAGE, path, "is a folder, not a photo")
    if isinstance(exc, PermissionError):
        return PhotoError(
            PhotoErrorKind.UNREADABLE,
            path,
            f"permission denied while {doing}; check the file's and its folder's permissions",
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return PhotoError(
            PhotoErrorKind.DISK_FULL,
            path,
            f"the disk is full while {doing}; free some space and try again "
            "(the original file is untouched)",
        )
    if exc.errno == errno.EROFS:
        return PhotoError(
            PhotoErrorKind.READ_ONLY, path, f"the file system is read-only while {doing}"
        )
    if exc.errno in _ERRNO_TEXT:
        return PhotoError(kind, path, _ERRNO_TEXT[exc.errno].format(doing=doing))
    reason = exc.strerror or str(exc) or "no message"
    if exc.errno is None:  # raised by a library, not by the system
        return PhotoError(kind, path, f"{doing} failed: {type(exc).__name__}: {reason}")
    name = errno.errorcode.get(exc.errno, f"error {exc.errno}")
    return PhotoError(
        kind,
        path,
        f"the system reported a problem while {doing}: {reason} ({type(exc).__name__}, {name})",
    )


def run_batch(
    paths: Iterable[Path | str],
    fn: Callable[[Path], T],
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[FileResult[T]]:
    """``fn`` on every path; a :class:`PhotoError` (or any unexpected exception, reported as a
    corrupt file) becomes that file's result and the loop carries on."""
    todo = [Path(p) for p in paths]
    results: list[FileResult[T]] = []
    for i, path in enumerate(todo):
        if cancelled is not None and cancelled():
            results.extend(
                FileResult(p, error=PhotoError(PhotoErrorKind.CANCELLED, p, "cancelled"))
                for p in todo[i:]
            )
            break
        results.append(call_for_file(path, fn))
        if progress is not None:
            progress(i + 1, len(todo))
    return results


def call_for_file(path: Path, fn: Callable[[Path], T]) -> FileResult[T]:
    """``fn(path)`` as a :class:`FileResult`; never raises for a problem with the file. An
    exception that is no :class:`PhotoError` becomes one (its ``__cause__``), and is logged."""
    try:
        return FileResult(path, value=fn(path))
    except PhotoError as exc:
        return FileResult(path, error=exc)
    except Exception as exc:  # a parser tripping over a broken file must not stop the batch
        if isinstance(exc, OSError) and exc.errno is not None:
            error = os_error(path, exc, "reading it", kind=PhotoErrorKind.UNREADABLE)
        else:
            message = (
                "the file is damaged or not a valid image: reading it stopped with an error "
                f"({type(exc).__name__}: {exc})"
            )
            error = PhotoError(PhotoErrorKind.CORRUPT, path, message)
        error.__cause__ = exc
        log.debug("%s: %s", path, error.message, exc_info=exc)
        return FileResult(path, error=error)
