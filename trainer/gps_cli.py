"""``locdiff gps``: read, write, remove and undo photo GPS positions from the command line.

Scriptable like exiftool: one line per file (``PATH: result``), ``--json`` for JSON Lines,
exit status 0 when every file succeeded, 1 when any failed, 2 for bad arguments. Folders are
searched recursively for photos. Examples::

    locdiff gps read photos/ --json
    locdiff gps write IMG_0001.jpg IMG_0002.heic --lat 43.4674 --lon 11.8851 --alt 260
    locdiff gps remove --keep-mtime holiday/
    locdiff gps undo
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from locdiff_core.photo.errors import FileResult
from locdiff_core.photo.gps import describe, read_gps_batch
from locdiff_core.photo.reading import find_photos
from locdiff_core.photo.writing import (
    BackupMode,
    WriteConfig,
    WriteOutcome,
    WriterBackend,
    remove_gps,
    undo_last_batch,
    write_gps,
)


def _report(results: Sequence[FileResult], ok_text, *, as_json: bool = False) -> int:
    for r in results:
        if as_json:
            print(json.dumps(ok_text(r) if r.ok else _error_doc(r), ensure_ascii=False))
        elif r.ok:
            note = f" (note: {r.warning})" if r.warning else ""
            print(f"{r.path}: {ok_text(r)}{note}")
        else:
            print(f"{r.path}: error: {r.error.message}")
    failed = sum(not r.ok for r in results)
    if failed:
        print(f"{failed} of {len(results)} files failed", file=sys.stderr)
    return 1 if failed else 0


def _error_doc(r: FileResult) -> dict:
    return {
        "file": str(r.path),
        "ok": False,
        "error": r.error.kind.name,
        "message": r.error.message,
    }


def _read_doc(r: FileResult) -> dict:
    fix = r.value
    doc = {"file": str(r.path), "ok": True, "lat": None, "lon": None, "alt": None, "source": None}
    if fix is not None:
        doc.update(lat=fix.lat, lon=fix.lon, alt=fix.alt, source=fix.source.value)
    return doc


def _paths(args: argparse.Namespace) -> list[Path]:
    paths = find_photos(args.paths)
    if not paths:
        raise ValueError("no photos found in the given paths")
    return paths


def _read(args: argparse.Namespace) -> int:
    results = read_gps_batch(_paths(args))
    if args.json:
        return _report(results, _read_doc, as_json=True)
    return _report(results, lambda r: describe(r.value))


def _write_config(args: argparse.Namespace) -> WriteConfig:
    if args.no_backup:
        backup = BackupMode.NONE
    else:
        backup = BackupMode.FOLDER if args.backup_dir else BackupMode.NEXT_TO_FILE
    return WriteConfig(
        backend=WriterBackend(args.backend),
        backup=backup,
        backup_dir=args.backup_dir,
        keep_mtime=args.keep_mtime,
    )


def _written(r: FileResult) -> str:
    outcome: WriteOutcome = r.value
    if outcome.method.name == "UNCHANGED":
        return "unchanged (no GPS to remove)"
    text = f"done ({outcome.method.value})"
    if outcome.backup is not None:
        text += f", original kept as {outcome.backup}"
    return text


def _write(args: argparse.Namespace) -> int:
    results = write_gps(_paths(args), args.lat, args.lon, args.alt, _write_config(args))
    return _report(results, _written)


def _remove(args: argparse.Namespace) -> int:
    return _report(remove_gps(_paths(args), _write_config(args)), _written)


def _undo(args: argparse.Namespace) -> int:
    return _report(undo_last_batch(), lambda r: r.value)


def _add_write_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="photos or folders")
    p.add_argument("--no-backup", action="store_true", help="keep no backup (and so no undo)")
    p.add_argument("--backup-dir", type=Path, help="keep backups under this folder")
    p.add_argument("--keep-mtime", action="store_true", help="keep the modification time")
    p.add_argument(
        "--backend",
        choices=[b.value for b in WriterBackend],
        default=WriterBackend.AUTO.value,
        help="auto: built-in writer for JPEG/TIFF/PNG/WebP, exiftool for the rest (default)",
    )


def add_gps_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``locdiff gps ...`` on the top-level subparsers."""
    gps = sub.add_parser("gps", help="read, write or remove the GPS position of photos")
    actions = gps.add_subparsers(dest="gps_command", metavar="ACTION", required=True)
    read = actions.add_parser("read", help="print each photo's position")
    read.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="photos or folders")
    read.add_argument("--json", action="store_true", help="one JSON object per line")
    read.set_defaults(func=_read)
    write = actions.add_parser("write", help="set the position (lossless, with a backup)")
    _add_write_options(write)
    write.add_argument("--lat", type=float, required=True, help="latitude, degrees north")
    write.add_argument("--lon", type=float, required=True, help="longitude, degrees east")
    write.add_argument("--alt", type=float, help="altitude, metres above sea level")
    write.set_defaults(func=_write)
    remove = actions.add_parser("remove", help="remove the position (for privacy)")
    _add_write_options(remove)
    remove.set_defaults(func=_remove)
    undo = actions.add_parser("undo", help="put back the files of the last write or remove")
    undo.set_defaults(func=_undo)
