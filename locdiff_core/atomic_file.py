"""Atomic file writes: a reader sees the old file or the complete new one, never half of it.

The data goes to a hidden temporary file in the destination's folder (so the final rename stays
on one file system), is flushed and fsynced, and replaces the destination with ``os.replace``;
the folder is fsynced too where the platform allows it, so the rename survives a power cut.
On any error the temporary file is removed and the destination is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, text: bool = False) -> Iterator[IO]:
    """Open a temporary file that becomes ``path`` when the ``with`` block ends without error.

    ``text=True`` gives a UTF-8 text file with ``newline=""`` (what the ``csv`` module wants);
    otherwise a binary file.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"{path}: folder {path.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        fh = os.fdopen(fd, "w", encoding="utf-8", newline="") if text else os.fdopen(fd, "wb")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries so a rename survives a crash (a no-op where folders cannot be
    opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
