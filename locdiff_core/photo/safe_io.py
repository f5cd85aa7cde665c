"""Safe file access: only regular files are opened, paths stay in their folder, and files are
replaced crash-safely (temporary file in the same folder, fsync, atomic rename).

Opening a FIFO waits forever for a writer and a device streams without end, so every reader calls
:func:`check_regular` first: it looks at :func:`os.stat` (symbolic links followed) and never
opens the file. :class:`RootGuard` tells whether a path named relative to a folder (a CSV's image
id) or found while walking it (a symbolic link) resolves outside that folder.

A reader (or a power cut) sees either the old file or the new one, never half of each: the new
content is written beside the original, flushed to disk, given the original's permission bits,
and moved over it with :func:`os.replace`, which is atomic within one file system; the folder is
then flushed so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
from pathlib import Path

from locdiff_core.atomic_file import fsync_dir
from locdiff_core.photo.errors import PhotoError, PhotoErrorKind, os_error

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def check_regular(path: Path | str, what: str = "a photo", doing: str = "opening it") -> None:
    """Raise :class:`PhotoError` unless ``path`` (symbolic links followed) is a regular file.

    Decided from :func:`os.stat` alone, so a FIFO, socket or device is refused (kind
    ``SPECIAL_FILE``) without being opened; a folder is ``NOT_AN_IMAGE``; a missing or
    inaccessible path is the :func:`os_error` of ``doing``. ``what`` names the expected file in
    the message ("is a FIFO (named pipe), not a photo").
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise os_error(path, exc, doing) from exc
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise PhotoError(PhotoErrorKind.NOT_AN_IMAGE, path, f"is a folder, not {what}")
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "a special file")
    raise PhotoError(
        PhotoErrorKind.SPECIAL_FILE,
        path,
        f"is {kind}, not {what}; it was not opened (reading it could block forever); "
        "give the path of a regular file",
    )


class RootGuard:
    """Whether paths under ``root`` resolve inside it (symbolic links followed).

    The real path of each folder met is kept, so checking the ids of a large CSV costs about one
    ``lstat`` per image.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.real = Path(os.path.realpath(self.root))
        self._folders: dict[Path, Path] = {}

    def contains(self, real: Path) -> bool:
        """Whether the resolved path ``real`` lies in the root."""
        return real.is_relative_to(self.real)

    def escape(self, relative: str) -> str | None:
        """Why ``root / relative`` would lie outside the root, or ``None`` when it stays in.

        An absolute path and ``..`` are refused as written; otherwise the path is resolved,
        through a link of the file itself or of any folder on the way.
        """
        rel = Path(relative)
        if rel.is_absolute() or rel.drive or rel.root:
            return "is an absolute path"
        if ".." in rel.parts:
            return "climbs out of the folder with '..'"
        folder = self._folders.get(rel.parent)
        if folder is None:
            folder = self._folders[rel.parent] = Path(os.path.realpath(self.real / rel.parent))
        real = folder / rel.name
        if os.path.islink(real):
            real = Path(os.path.realpath(real))
        if self.contains(real):
            return None
        return f"resolves through a symbolic link to {real}, outside {self.root}"


def temp_path_for(path: Path) -> Path:
    """A fresh hidden name in ``path``'s folder that keeps its suffix (exiftool needs it):
    ``.NAME.locdiff-PID-XXXXXXXX.SUFFIX``, the process id telling
    :mod:`~locdiff_core.photo.leftovers` whether its writer is still running."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.stem}.locdiff-{token}{path.suffix}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_read_only(path: Path) -> bool:
    """Whether the file is marked read-only (checked from its mode bits, so also for root)."""
    mode = path.stat().st_mode
    return not mode & stat.S_IWUSR or not os.access(path, os.W_OK)


def write_temp(beside: Path, data: bytes) -> Path:
    """``data`` written and flushed to disk in a new temporary file next to ``beside``."""
    temp = temp_path_for(beside)
    try:
        with open(temp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp


def replace_with(path: Path, temp: Path, *, keep_mtime: bool, synced: bool = False) -> None:
    """Move the finished ``temp`` over ``path`` atomically, keeping permission bits and, if
    asked, the modification time; ``synced`` says ``temp`` is already flushed to disk.
    ``temp`` is removed if anything fails."""
    try:
        before = path.stat() if path.exists() else None
        if not synced:
            fsync_file(temp)
        if before is not None:
            os.chmod(temp, stat.S_IMODE(before.st_mode))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(path.parent)
    if keep_mtime and before is not None:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def write_bytes_atomic(path: Path, data: bytes, *, keep_mtime: bool = False) -> None:
    """Replace (or create) ``path`` with ``data`` atomically."""
    replace_with(path, write_temp(path, data), keep_mtime=keep_mtime, synced=True)


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` (content and times) over ``dst`` atomically."""
    temp = temp_path_for(dst)
    try:
        shutil.copy2(src, temp)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    replace_with(dst, temp, keep_mtime=False)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_copy(src: Path, dst: Path) -> None:
    """Keep ``src``'s current content at ``dst``: a hard link when possible (free, and safe
    because writers here always replace files rather than edit them), else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
