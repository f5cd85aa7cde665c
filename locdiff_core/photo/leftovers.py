"""Temporary files left beside photos by a write that was killed, and their removal.

Every write goes through a hidden temporary file beside the photo
(:func:`~locdiff_core.photo.safe_io.temp_path_for`: ``.NAME.locdiff-PID-XXXXXXXX.SUFFIX``) that
is renamed over the photo or removed. A process killed outright (``SIGKILL``, a power cut) can
do neither, so a write batch first sweeps the folders it writes in: a file whose name matches
that pattern exactly is removed when the process that made it has ended, or when it is older
than :data:`STALE_AFTER_S` (a process id can be reused, and names without one, from older
versions, have nothing else to go by). Only regular files are removed, never links or folders.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterable
from pathlib import Path

STALE_AFTER_S = 600.0
_TEMP_NAME = re.compile(r"\..+\.locdiff-(?:(?P<pid>[0-9]{1,10})-)?[0-9a-f]{8}(?:\.[^./\\]+)?")


def is_leftover_name(name: str) -> bool:
    """Whether ``name`` has the exact form of a writer's temporary file."""
    return _TEMP_NAME.fullmatch(name) is not None


def _pid_alive(pid: int) -> bool | None:
    """Whether process ``pid`` runs (``None``: cannot tell on this platform)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return None
    return True


def _is_stale(path: Path, pid: str | None, now: float) -> bool:
    try:
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    if now - st.st_mtime > STALE_AFTER_S:
        return True
    return pid is not None and _pid_alive(int(pid)) is False


def find_leftovers(folders: Iterable[Path], *, now: float | None = None) -> list[Path]:
    """Temporary files of ended or long-gone writes directly inside ``folders``."""
    now = time.time() if now is None else now
    found = []
    for folder in dict.fromkeys(Path(f) for f in folders):
        try:
            names = sorted(os.listdir(folder))
        except OSError:  # missing or unreadable: the write reports it per file
            continue
        for name in names:
            match = _TEMP_NAME.fullmatch(name)
            if match and _is_stale(folder / name, match["pid"], now):
                found.append(folder / name)
    return found


def sweep_leftovers(folders: Iterable[Path], *, now: float | None = None) -> list[Path]:
    """Remove :func:`find_leftovers`; returns the files removed (a file that cannot be removed
    is left and not listed)."""
    removed = []
    for path in find_leftovers(folders, now=now):
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def folders_of(paths: Iterable[Path]) -> list[Path]:
    """The folders a batch over ``paths`` writes in (a linked photo's own folder included)."""
    folders: dict[Path, None] = {}
    for path in paths:
        folders[path.parent] = None
        if path.is_symlink():
            folders[path.resolve().parent] = None
    return list(folders)
