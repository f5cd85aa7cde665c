"""Knowing that a file on disk is the one expected, without hashing it at every start.

A downloaded file whose size and sha256 were verified gets a small record beside it,
``<file>.verified.json``: its size, modification time (ns) and sha256. :func:`check_file` trusts
the record while the file's size and modification time are still those recorded, and hashes
the file again otherwise, so a 1.7 GB weights file is hashed once, not at each start, and a
file changed since (cut short, overwritten, copied over) is noticed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from locdiff_core.atomic_file import atomic_write

RECORD_SUFFIX = ".verified.json"


@dataclass(frozen=True)
class VerifiedFile:
    """A file and the size and sha256 it was verified to have."""

    path: Path
    size: int
    sha256: str


class DamagedFileError(ValueError):
    """A file whose sha256 is not the expected one; ``path``, ``sha256`` (what it has) and
    ``expected`` say which."""

    def __init__(self, path: Path, sha256: str, expected: str) -> None:
        super().__init__(
            f"{path}: the file is damaged: its sha256 is {sha256}, expected {expected} (a "
            "download cut short, or a file changed since)"
        )
        self.path, self.sha256, self.expected = path, sha256, expected


def record_path(path: Path) -> Path:
    """Where the record of ``path`` is kept: ``<path>.verified.json``."""
    return path.with_name(path.name + RECORD_SUFFIX)


def write_record(file: VerifiedFile) -> None:
    """Record that ``file`` was verified, with its current modification time. A record that
    cannot be written costs only a second hashing later, so that is not an error."""
    stat = file.path.stat()
    if stat.st_size != file.size:
        return  # changed under us: record nothing rather than something untrue
    record = {"size": file.size, "mtime_ns": stat.st_mtime_ns, "sha256": file.sha256}
    target = record_path(file.path)
    with contextlib.suppress(OSError, ValueError), atomic_write(target, text=True) as fh:
        json.dump(record, fh)


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("sha256"), str)
    return record if ok and isinstance(record.get("size"), int) else None


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_file(path: Path, expected: str | None = None) -> str | None:
    """The sha256 of ``path`` once it is checked against ``expected`` (else against its
    record); ``None`` when there is neither, so nothing to check it against.

    Raises :class:`DamagedFileError` when the file's sha256 differs, and ``OSError`` when it
    cannot be read. Hashes the file only when its record is missing or out of date.
    """
    path = Path(path)
    stat = os.stat(path)
    record = _read_record(path)
    current = record is not None and (record["size"], record.get("mtime_ns")) == (
        stat.st_size,
        stat.st_mtime_ns,
    )
    reference = expected or (record["sha256"] if record is not None else None)
    if reference is None:
        return None
    actual = record["sha256"] if current else _sha256(path)
    if actual != reference:
        raise DamagedFileError(path, actual, reference)
    if not current:
        write_record(VerifiedFile(path, stat.st_size, actual))
    return actual
