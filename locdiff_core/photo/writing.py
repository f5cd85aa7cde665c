"""Writing and removing GPS positions, losslessly and safely, with backups and undo.

Backends (:class:`WriterBackend`): exiftool (when installed; JPEG, TIFF, PNG, WebP, HEIC and
more) and a built-in writer for JPEG, TIFF, PNG and WebP that changes only the EXIF GPS IFD
(:mod:`locdiff_core.photo.tiff_gps`), so JPEG scan data, maker notes, thumbnails, JFIF, XMP, ICC
and IPTC segments stay byte-identical. Other files (HEIC without exiftool) get an XMP sidecar,
and the result says so. Pillow is never used to write: it re-encodes JPEGs.

Every change goes to a temporary file in the same folder, is fsynced and atomically renamed over
the original (:mod:`~locdiff_core.photo.safe_io`). Before that, the original is backed up (once,
next to the file as ``photo.jpg_original`` like exiftool, or under a backup folder) and recorded
in the undo journal (:mod:`~locdiff_core.photo.journal`); :func:`undo_last_batch` restores the
state before the last batch.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from locdiff_core.photo import exiftool as et
from locdiff_core.photo import xmp
from locdiff_core.photo.containers import Container, rewrite_exif, sniff
from locdiff_core.photo.errors import (
    CancelledFn,
    FileResult,
    PhotoError,
    PhotoErrorKind,
    ProgressFn,
    os_error,
    run_batch,
)
from locdiff_core.photo.gps import read_exif_tags
from locdiff_core.photo.journal import Journal
from locdiff_core.photo.safe_io import (
    copy_atomic,
    is_read_only,
    replace_with,
    sha256_of,
    temp_path_for,
    write_temp,
)
from locdiff_core.photo.tiff_gps import TiffError, plan_gps_edit

Position = tuple[float, float, float | None]  # lat, lon degrees; alt metres or None


class WriterBackend(enum.Enum):
    """``AUTO`` uses the built-in writer for JPEG, TIFF, PNG and WebP (it changes fewer bytes
    and is about 30x faster), and exiftool, when installed, for other formats and for removing
    GPS from embedded XMP; without exiftool those get an XMP sidecar or a clear message."""

    AUTO = "auto"
    EXIFTOOL = "exiftool"
    BUILTIN = "builtin"


class BackupMode(enum.Enum):
    NEXT_TO_FILE = "next-to-file"  # photo.jpg_original
    FOLDER = "folder"  # <backup_dir>/<absolute path of the photo>
    NONE = "none"  # no backup, and therefore no undo


class WriteMethod(enum.Enum):
    BUILTIN = "built-in writer"
    EXIFTOOL = "exiftool"
    SIDECAR = "XMP sidecar"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class WriteConfig:
    """How GPS writes are carried out."""

    backend: WriterBackend = WriterBackend.AUTO
    backup: BackupMode = BackupMode.NEXT_TO_FILE
    backup_dir: Path | None = None
    keep_mtime: bool = False
    journal_dir: Path | None = None  # default: journal.state_dir()

    def __post_init__(self) -> None:
        if self.backup is BackupMode.FOLDER and self.backup_dir is None:
            raise ValueError("BackupMode.FOLDER needs backup_dir=<folder for the backups>")


@dataclass(frozen=True)
class WriteOutcome:
    method: WriteMethod
    backup: Path | None = None
    written: Path | None = None  # the file that changed (the sidecar for SIDECAR)


def check_position(lat: float, lon: float, alt: float | None = None) -> Position:
    """Validated ``(lat, lon, alt)``; raises ``ValueError`` saying what to fix."""
    for name, value in (("latitude", lat), ("longitude", lon), ("altitude", alt)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside [-90, 90] (did you swap --lat and --lon?)")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside [-180, 180]")
    if alt is not None and abs(alt) >= 1e6:
        raise ValueError(f"altitude {alt} m is not on Earth; give metres above sea level")
    return float(lat), float(lon), None if alt is None else float(alt)


def backup_path(path: Path, config: WriteConfig) -> Path | None:
    """Where the original of ``path`` is backed up under ``config`` (None: no backup)."""
    if config.backup is BackupMode.NONE:
        return None
    if config.backup is BackupMode.NEXT_TO_FILE:
        return path.with_name(path.name + "_original")
    assert config.backup_dir is not None
    absolute = path.resolve()
    return config.backup_dir / absolute.relative_to(absolute.anchor)


def _use_exiftool(config: WriteConfig) -> bool:
    if config.backend is WriterBackend.BUILTIN:
        return False
    available = et.exiftool_path() is not None
    if config.backend is WriterBackend.EXIFTOOL and not available:
        raise ValueError(
            "the exiftool backend was requested but exiftool is not installed; install it "
            "(Debian/Ubuntu: `apt-get install libimage-exiftool-perl`) or use the built-in writer"
        )
    return available


def _has_xmp_gps(path: Path) -> bool:
    packet = xmp.embedded_packet(path)
    return packet is not None and xmp.has_gps_properties(packet)


def _has_gps(path: Path) -> bool:
    try:
        if any(k.startswith("GPS GPS") for k in read_exif_tags(path)):
            return True
    except Exception:  # damaged EXIF: let the writer decide
        return True
    return _has_xmp_gps(path)


class _Writer:
    """One batch of writes: shared config, exiftool process and journal."""

    def __init__(self, config: WriteConfig, position: Position | None) -> None:
        self.config = config
        self.position = position
        self.exiftool = et.shared() if _use_exiftool(config) else None
        self.journal = Journal(config.journal_dir)
        self.journal.begin("write" if position is not None else "remove")

    def __call__(self, path: Path) -> WriteOutcome:
        path = path.resolve() if path.is_symlink() else path
        try:
            if not path.is_file():
                raise PhotoError(PhotoErrorKind.NOT_FOUND, path, "file not found")
            if is_read_only(path):
                raise PhotoError(
                    PhotoErrorKind.READ_ONLY,
                    path,
                    "the file is read-only; make it writable (e.g. `chmod u+w`) to change its GPS",
                )
            if self.position is None and not _has_gps(path) and xmp.find_sidecar(path) is None:
                return WriteOutcome(WriteMethod.UNCHANGED)
            outcome = self._write(path)
            self._sync_sidecar(path, outcome)
            return outcome
        except OSError as exc:
            raise os_error(path, exc, "writing GPS") from exc

    def _write(self, path: Path) -> WriteOutcome:
        with open(path, "rb") as f:
            head = f.read(16)
        container = sniff(head)
        if self.exiftool is not None and (
            self.config.backend is WriterBackend.EXIFTOOL
            or container is None
            or (self.position is None and _has_xmp_gps(path))
        ):
            return self._write_exiftool(path)
        if container is not None:
            return self._write_builtin(path, container)
        if head[4:8] == b"ftyp":  # HEIC/HEIF/AVIF: no built-in writer
            if self.position is None and _has_gps(path):
                raise PhotoError(
                    PhotoErrorKind.NO_WRITER,
                    path,
                    "GPS inside a HEIC/HEIF file can only be removed with exiftool; install it "
                    "(Debian/Ubuntu: `apt-get install libimage-exiftool-perl`)",
                )
            return self._write_sidecar(path)
        raise PhotoError(
            PhotoErrorKind.UNSUPPORTED,
            path,
            "not a JPEG, TIFF, PNG, WebP or HEIC file; install exiftool to write other formats",
        )

    def _commit(self, path: Path, temp: Path, digest: str, *, synced: bool) -> Path | None:
        """Back up, journal, then atomically move ``temp`` over ``path``."""
        backup = backup_path(path, self.config)
        try:
            if backup is not None and not backup.exists():
                backup.parent.mkdir(parents=True, exist_ok=True)
                copy_atomic(path, backup)
            self.journal.record(path, digest, keep_copy=backup is not None)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        replace_with(path, temp, keep_mtime=self.config.keep_mtime, synced=synced)
        return backup

    def _write_builtin(self, path: Path, container: Container) -> WriteOutcome:
        data = path.read_bytes()
        try:
            new = rewrite_exif(data, container, self._edit_block)
        except TiffError as exc:
            raise PhotoError(
                PhotoErrorKind.CORRUPT, path, f"cannot change GPS safely: {exc}"
            ) from exc
        if new is None:
            return WriteOutcome(WriteMethod.UNCHANGED)
        temp = write_temp(path, new)
        backup = self._commit(path, temp, hashlib.sha256(new).hexdigest(), synced=True)
        return WriteOutcome(WriteMethod.BUILTIN, backup, path)

    def _edit_block(self, block: bytes) -> bytes | None:
        edit = plan_gps_edit(block, self.position)
        return edit.apply(block) if edit.changed else None

    def _write_exiftool(self, path: Path) -> WriteOutcome:
        assert self.exiftool is not None
        temp = temp_path_for(path)
        args = (
            et.REMOVE_ASSIGNMENTS
            if self.position is None
            else et.position_assignments(*self.position)
        )
        try:
            self.exiftool.write_copy(path, temp, args)
            backup = self._commit(path, temp, sha256_of(temp), synced=False)
        except et.ExiftoolError as exc:
            raise PhotoError(PhotoErrorKind.WRITE_FAILED, path, f"exiftool: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()
        return WriteOutcome(WriteMethod.EXIFTOOL, backup, path)

    def _write_sidecar(self, path: Path) -> WriteOutcome:
        sidecar = xmp.find_sidecar(path) or xmp.sidecar_candidates(path)[0]
        self._update_sidecar(sidecar)
        return WriteOutcome(WriteMethod.SIDECAR, None, sidecar)

    def _update_sidecar(self, sidecar: Path) -> None:
        old = sidecar.read_bytes() if sidecar.exists() else None
        try:
            new = xmp.updated_sidecar(old, self.position)
        except xmp.XmpGpsError as exc:
            raise PhotoError(PhotoErrorKind.CORRUPT, sidecar, str(exc)) from exc
        temp = write_temp(sidecar, new)
        try:
            self.journal.record(sidecar, hashlib.sha256(new).hexdigest(), keep_copy=True)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        replace_with(sidecar, temp, keep_mtime=False, synced=True)

    def _sync_sidecar(self, path: Path, outcome: WriteOutcome) -> None:
        """An existing sidecar overrides the file's own GPS when read, so keep it in step."""
        if outcome.method in (WriteMethod.SIDECAR, WriteMethod.UNCHANGED):
            return
        sidecar = xmp.find_sidecar(path)
        if sidecar is not None:
            self._update_sidecar(sidecar)


def _notes(results: list[FileResult[WriteOutcome]], removing: bool) -> list:
    out = []
    for r in results:
        warning = None
        if r.ok and r.value.method is WriteMethod.SIDECAR and not removing:
            warning = (
                f"this format cannot be written in place without exiftool; GPS went to the "
                f"sidecar {r.value.written.name} (install exiftool to write into the file)"
            )
        elif r.ok and removing and r.value.method is WriteMethod.BUILTIN and _has_xmp_gps(r.path):
            warning = "embedded XMP still holds a position; install exiftool to remove it"
        out.append(FileResult(r.path, r.value, r.error, warning) if warning else r)
    return out


def write_gps(
    paths: Iterable[Path | str],
    lat: float,
    lon: float,
    alt: float | None = None,
    config: WriteConfig = WriteConfig(),
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[FileResult[WriteOutcome]]:
    """Set the GPS position of every file; one result per file, never an exception for a file.

    Raises ``ValueError`` only for a bad position or configuration (before touching any file).
    """
    writer = _Writer(config, check_position(lat, lon, alt))
    results = run_batch(paths, writer, progress=progress, cancelled=cancelled)
    return _notes(results, removing=False)


def remove_gps(
    paths: Iterable[Path | str],
    config: WriteConfig = WriteConfig(),
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[FileResult[WriteOutcome]]:
    """Remove the GPS position (EXIF GPS IFD, XMP GPS with exiftool, sidecar GPS) of every file."""
    results = run_batch(paths, _Writer(config, None), progress=progress, cancelled=cancelled)
    return _notes(results, removing=True)


def undo_last_batch(journal_dir: Path | None = None) -> list[FileResult[str]]:
    """Put back every file of the last write batch as it was before; one result per file.

    A file changed again since that batch is left alone (its result says where the saved copy
    is). Raises ``ValueError`` when there is nothing to undo.
    """
    journal = Journal(journal_dir)
    loaded = journal.load()
    if loaded is None or not loaded[2]:
        raise ValueError("nothing to undo: no GPS write batch is recorded")
    _action, _when, entries = loaded
    results, left = [], []
    for entry in reversed(entries):
        path = Path(entry.path)
        try:
            results.append(FileResult(path, value=_undo_one(journal, entry)))
        except PhotoError as exc:
            results.append(FileResult(path, error=exc))
            if exc.kind is not PhotoErrorKind.NOTHING_TO_UNDO:  # worth another try later
                left.append(entry)
        except OSError as exc:
            results.append(FileResult(path, error=os_error(path, exc, "restoring it")))
            left.append(entry)
    journal.keep_only(list(reversed(left)))
    return list(reversed(results))


def _undo_one(journal: Journal, entry) -> str:
    path = Path(entry.path)
    if path.exists() and sha256_of(path) != entry.written_sha256:
        raise PhotoError(
            PhotoErrorKind.WRITE_FAILED,
            path,
            "changed since the GPS write, so it was not restored"
            + (
                f"; the earlier version is in {journal.folder / entry.saved}" if entry.saved else ""
            ),
        )
    if entry.saved is None:
        path.unlink(missing_ok=True)
        return "removed (it was created by the write)"
    if not entry.saved:
        raise PhotoError(
            PhotoErrorKind.NOTHING_TO_UNDO,
            path,
            "was written without a backup (--no-backup), so it cannot be restored",
        )
    copy_atomic(journal.folder / entry.saved, path)
    return "restored"
