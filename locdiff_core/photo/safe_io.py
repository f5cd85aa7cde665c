"""Crash-safe file replacement: temporary file in the same folder, fsync, atomic rename.

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


def temp_path_for(path: Path) -> Path:
    """A fresh hidden name in ``path``'s folder that keeps its suffix (exiftool needs it)."""
    return path.with_name(f".{path.stem}.locdiff-{secrets.token_hex(4)}{path.suffix}")


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
