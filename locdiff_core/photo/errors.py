"""Typed per-file failures and the batch loop that never stops on one bad file.

Every function in :mod:`locdiff_core.photo` that works on one file raises :class:`PhotoError`
(never a bare ``OSError`` or a library's own exception); the batch functions turn each file into a
:class:`FileResult` holding either a value or that error, so one broken photo in a library of
thousands is reported and skipped.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

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


def os_error(path: Path | str, exc: OSError, doing: str) -> PhotoError:
    """An ``OSError`` raised while ``doing`` something to ``path``, as a :class:`PhotoError`."""
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
    reason = exc.strerror or str(exc)
    return PhotoError(PhotoErrorKind.WRITE_FAILED, path, f"{reason} while {doing}")


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
    """``fn(path)`` as a :class:`FileResult`; never raises for a problem with the file."""
    try:
        return FileResult(path, value=fn(path))
    except PhotoError as exc:
        return FileResult(path, error=exc)
    except OSError as exc:
        return FileResult(path, error=os_error(path, exc, "reading it"))
    except Exception as exc:  # a parser tripping over a broken file must not stop the batch
        return FileResult(
            path,
            error=PhotoError(
                PhotoErrorKind.CORRUPT,
                path,
                f"the file is damaged or not a valid image ({type(exc).__name__}: {exc})",
            ),
        )
