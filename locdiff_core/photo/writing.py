"""Writing and removing GPS positions, losslessly and safely, with backups and undo.

Backends (:class:`WriterBackend`): exiftool (when installed; JPEG, TIFF, PNG, WebP, HEIC and
more) and a built-in writer for JPEG, TIFF, PNG and WebP that changes only the EXIF GPS IFD
(:mod:`locdiff_core.photo.tiff_gps`), so JPEG scan data, maker notes, thumbnails, JFIF, XMP, ICC
and IPTC segments stay byte-identical. Other files (HEIC without exiftool) get an XMP sidecar,
and the result says so. Pillow is never used to write: it re-encodes JPEGs.

Every change goes to a temporary file in the same folder and is checked there by independent
readers (:mod:`~locdiff_core.photo.verify`): our reader, exifread and exiftool must find the new
position (or none after a removal) in every EXIF block and XMP packet, and every other tag as
before. A write that does not verify leaves the original untouched; in ``AUTO`` mode exiftool is
tried next, and its result is verified the same way. A verified file is fsynced and
atomically renamed over the original (:mod:`~locdiff_core.photo.safe_io`). Before that, the
original is backed up (once, next to the file as ``photo.jpg_original`` like exiftool, or under
a backup folder) and recorded in the undo journal (:mod:`~locdiff_core.photo.journal`);
:func:`~locdiff_core.photo.undo.undo_last_batch` restores the state before the last batch.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import exifread

from locdiff_core.photo import exiftool as et
from locdiff_core.photo import verify, xmp
from locdiff_core.photo.containers import (
    Container,
    MetadataEdit,
    metadata_blocks,
    rewrite_exif,
    sniff,
)
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
from locdiff_core.photo.leftovers import folders_of, sweep_leftovers
from locdiff_core.photo.safe_io import (
    check_regular,
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
    note: str | None = None  # what the user should know although the write succeeded


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


def _tags_hold_gps(tags: dict) -> bool:
    return any(k.startswith("GPS GPS") or k == "Image GPSInfo" for k in tags)


def _has_gps(path: Path, checker: et.Exiftool | None = None) -> bool:
    """Whether any EXIF block or XMP packet of ``path`` may hold a position for any reader
    (a block that cannot be parsed counts: the writer then decides). exiftool (``checker``),
    which reads far more formats and damaged files, is asked last."""
    with open(path, "rb") as f:
        container = sniff(f.read(16))
    if container in (Container.JPEG, Container.PNG, Container.WEBP):
        try:
            blocks = metadata_blocks(path.read_bytes(), container)
        except TiffError:
            return True
        for block in blocks.exif:
            try:
                tags = exifread.process_file(
                    io.BytesIO(block), details=False, extract_thumbnail=False
                )
            except Exception:  # damaged EXIF: let the writer decide
                return True
            if _tags_hold_gps(tags):
                return True
        if any(xmp.has_gps_properties(packet) for packet in blocks.xmp):
            return True
    try:  # what `gps read` sees (exifread's own parsers may find a block ours did not)
        if _tags_hold_gps(read_exif_tags(path)) or _has_xmp_gps(path):
            return True
    except Exception:  # damaged EXIF: let the writer decide
        return True
    if checker is None:
        return False
    try:
        return bool(verify.exiftool_positions(checker, path))
    except et.ExiftoolError:
        return True


class _UnverifiedError(Exception):
    """A written copy that did not verify; the original is untouched."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _problems_text(problems: list[str]) -> str:
    return "; ".join(problems[:3]) + (
        f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    )


def _remove_gps_block(block: bytes) -> bytes | None:
    edit = plan_gps_edit(block, None)
    return edit.apply(block) if edit.changed else None


class _Writer:
    """One batch of writes: shared config, exiftool process and journal."""

    def __init__(self, config: WriteConfig, position: Position | None) -> None:
        self.config = config
        self.position = position
        self.exiftool = et.shared() if _use_exiftool(config) else None
        # The independent reader of every write; its process starts on first use.
        self.checker = et.shared() if et.exiftool_path() is not None else None
        self.journal = Journal(config.journal_dir)
        self.journal.begin("write" if position is not None else "remove")

    def __call__(self, path: Path) -> WriteOutcome:
        path = path.resolve() if path.is_symlink() else path
        try:
            check_regular(path, what="a photo", doing="writing GPS")
            if not path.is_file():
                raise PhotoError(PhotoErrorKind.NOT_FOUND, path, "file not found")
            if is_read_only(path):
                raise PhotoError(
                    PhotoErrorKind.READ_ONLY,
                    path,
                    "the file is read-only; make it writable (e.g. `chmod u+w`) to change its GPS",
                )
            if (
                self.position is None
                and not _has_gps(path, self.checker)
                and xmp.find_sidecar(path) is None
            ):
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
            or (container is Container.TIFF and _has_xmp_gps(path))  # tag 700: exiftool's
        ):
            return self._write_exiftool(path, verify.snapshot(path, self.checker))
        if container is not None:
            return self._write_builtin_or_exiftool(path, container)
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

    def _write_builtin_or_exiftool(self, path: Path, container: Container) -> WriteOutcome:
        """The built-in writer; when it refuses the file or its result does not verify,
        exiftool (``AUTO`` with exiftool installed), else a message saying why."""
        before = verify.snapshot(path, self.checker)
        try:
            return self._write_builtin(path, container, before)
        except TiffError as exc:
            why = f"the built-in writer cannot change GPS safely ({exc})"
            kind = PhotoErrorKind.CORRUPT
        except _UnverifiedError as exc:
            why = f"the built-in writer's result did not verify ({_problems_text(exc.problems)})"
            kind = PhotoErrorKind.WRITE_FAILED
        if self.exiftool is None:
            hint = (
                "; exiftool may write it: try `--backend exiftool`"
                if self.checker is not None
                else "; installing exiftool (Debian/Ubuntu: `apt-get install "
                "libimage-exiftool-perl`) gives a second writer to try"
            )
            raise PhotoError(kind, path, f"{why}; the file was not changed{hint}")
        try:
            outcome = self._write_exiftool(path, before)
        except PhotoError as exc:
            raise PhotoError(
                exc.kind, path, f"{why}, and exiftool failed too: {exc.message}"
            ) from exc
        return WriteOutcome(
            outcome.method, outcome.backup, outcome.written, f"{why}; exiftool wrote it"
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

    def _verified(self, temp: Path, before: verify.Snapshot) -> None:
        """Raise :class:`_UnverifiedError` (removing ``temp``) unless ``temp`` verifies."""
        try:
            problems = verify.check_written(temp, before, self.position, self.checker)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if problems:
            temp.unlink(missing_ok=True)
            raise _UnverifiedError(problems)

    def _write_builtin(
        self, path: Path, container: Container, before: verify.Snapshot
    ) -> WriteOutcome:
        data = path.read_bytes()
        edit = MetadataEdit(self._edit_block, others=_remove_gps_block, xmp=self._edit_xmp)
        new = rewrite_exif(data, container, edit)
        if new is None:
            return WriteOutcome(WriteMethod.UNCHANGED)
        temp = write_temp(path, new)
        self._verified(temp, before)
        backup = self._commit(path, temp, hashlib.sha256(new).hexdigest(), synced=True)
        return WriteOutcome(WriteMethod.BUILTIN, backup, path)

    def _edit_block(self, block: bytes) -> bytes | None:
        edit = plan_gps_edit(block, self.position)
        return edit.apply(block) if edit.changed else None

    def _edit_xmp(self, packet: bytes) -> bytes | None:
        """An XMP packet holding GPS gets the new position (or loses its GPS); others stay."""
        if not xmp.has_gps_properties(packet):
            return None
        try:
            return xmp.updated_sidecar(packet, self.position)
        except (xmp.XmpGpsError, SyntaxError) as exc:  # ET.ParseError is a SyntaxError
            raise TiffError(f"its XMP packet holds GPS but cannot be parsed ({exc})") from exc

    def _write_exiftool(self, path: Path, before: verify.Snapshot) -> WriteOutcome:
        tool = self.exiftool or self.checker
        assert tool is not None
        temp = temp_path_for(path)
        if self.position is None:
            args = et.REMOVE_ASSIGNMENTS
        else:
            args = et.position_assignments(*self.position, xmp=_has_xmp_gps(path))
        try:
            tool.write_copy(path, temp, args)
            self._verified(temp, before)
            backup = self._commit(path, temp, sha256_of(temp), synced=False)
        except et.ExiftoolError as exc:
            raise PhotoError(PhotoErrorKind.WRITE_FAILED, path, f"exiftool refused: {exc}") from exc
        except _UnverifiedError as exc:
            raise PhotoError(
                PhotoErrorKind.WRITE_FAILED,
                path,
                f"exiftool's result did not verify ({_problems_text(exc.problems)}); "
                "the file was not changed",
            ) from exc
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()
        return WriteOutcome(WriteMethod.EXIFTOOL, backup, path)

    def _write_sidecar(self, path: Path) -> WriteOutcome:
        sidecar = xmp.find_sidecar(path) or xmp.sidecar_candidates(path)[0]
        self._update_sidecar(sidecar)
        return WriteOutcome(WriteMethod.SIDECAR, None, sidecar)

    def _update_sidecar(self, sidecar: Path) -> None:
        old = xmp.read_sidecar(sidecar) if sidecar.exists() else None
        try:
            new = xmp.updated_sidecar(old, self.position)
        except xmp.XmpGpsError as exc:
            raise PhotoError(PhotoErrorKind.CORRUPT, sidecar, str(exc)) from exc
        except SyntaxError as exc:  # ET.ParseError
            raise PhotoError(
                PhotoErrorKind.CORRUPT, sidecar, f"the sidecar is not well-formed XML ({exc})"
            ) from exc
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

    def run(
        self,
        paths: Iterable[Path | str],
        progress: ProgressFn | None,
        cancelled: CancelledFn | None,
        fn: Callable[[Path], WriteOutcome] | None = None,
    ) -> list[FileResult[WriteOutcome]]:
        """Write every path with ``fn`` (default: this writer; after sweeping the temporary
        files a killed write left beside them), then release the journal."""
        try:
            todo = [Path(p) for p in paths]
            sweep_leftovers(folders_of(todo))
            return run_batch(todo, fn or self, progress=progress, cancelled=cancelled)
        finally:
            self.journal.close()


def _notes(results: list[FileResult[WriteOutcome]], removing: bool) -> list:
    out = []
    for r in results:
        warning = r.value.note if r.ok else None
        if r.ok and r.value.method is WriteMethod.SIDECAR and not removing:
            warning = (
                f"this format cannot be written in place without exiftool; GPS went to the "
                f"sidecar {r.value.written.name} (install exiftool to write into the file)"
            )
            if _has_gps(r.path):
                warning += "; the file's own EXIF still holds its earlier position"
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
    return _notes(writer.run(paths, progress, cancelled), removing=False)


def write_gps_each(
    placements: Iterable[tuple[Path | str, float, float, float | None]],
    config: WriteConfig = WriteConfig(),
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[FileResult[WriteOutcome]]:
    """Each ``(path, lat, lon, alt)`` at its own position, as one batch (one journal: one undo
    puts them all back); a result per file. ``ValueError`` for a bad position or a file given
    twice, before any file is touched."""
    wanted: dict[Path, Position] = {}
    for path, lat, lon, alt in placements:
        if Path(path) in wanted:
            raise ValueError(f"{path} is given twice")
        wanted[Path(path)] = check_position(lat, lon, alt)
    if not wanted:
        return []
    writer = _Writer(config, next(iter(wanted.values())))

    def one(path: Path) -> WriteOutcome:
        writer.position = wanted[path]
        return writer(path)

    return _notes(writer.run(wanted, progress, cancelled, one), removing=False)


def remove_gps(
    paths: Iterable[Path | str],
    config: WriteConfig = WriteConfig(),
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[FileResult[WriteOutcome]]:
    """Remove the GPS position (EXIF GPS IFD, XMP GPS with exiftool, sidecar GPS) of every file."""
    writer = _Writer(config, None)
    return _notes(writer.run(paths, progress, cancelled), removing=True)
