"""``locdiff gps``: read, write, remove, undo and geotag the GPS positions of photos.

Scriptable like exiftool: one line per file (``PATH: result``), ``--json`` for JSON Lines,
exit status 0 when every file succeeded, 1 when any failed, 2 for bad arguments (or another
write batch holding the undo journal). Folders are searched recursively for photos.

``write``, ``remove``, ``geotag`` and ``undo`` stop cleanly on SIGTERM, SIGINT (Ctrl-C) or
SIGHUP: the file being written is finished (files are replaced atomically, so none is ever
half-written), the others are left untouched and counted in a closing message, exiftool is
ended, and the exit status is 0 (1 if a file failed before); a second signal stops at once.
Before writing, temporary files left beside the photos by a killed write are removed
(:mod:`locdiff_core.photo.leftovers`).
Examples::

    locdiff gps read photos/ --json
    locdiff gps write IMG_0001.jpg IMG_0002.heic --lat 43.4674 --lon 11.8851 --alt 260
    locdiff gps remove --keep-mtime holiday/
    locdiff gps undo
    locdiff gps geotag holiday/ --track trip.gpx --tz Europe/Rome --offset -00:01:30 --dry-run

``geotag`` places photos by their capture time on GPS tracks (GPX, KML/KMZ, GeoJSON, CSV) and
on the photos among PATHS that already have a position (:mod:`locdiff_core.photo.geotag`):
one line per photo (position, source, gap, the time used), then the writes unless
``--dry-run``; photos that already have a position are kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from locdiff_core.photo.errors import FileResult, PhotoErrorKind
from locdiff_core.photo.exiftool import close_shared
from locdiff_core.photo.gps import describe, read_gps_batch
from locdiff_core.photo.leftovers import folders_of, sweep_leftovers
from locdiff_core.photo.reading import find_photos
from locdiff_core.photo.undo import undo_last_batch
from locdiff_core.photo.writing import (
    BackupMode,
    WriteConfig,
    WriteOutcome,
    WriterBackend,
    remove_gps,
    write_gps,
    write_gps_each,
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


_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


class _StopOnSignal:
    """While active, SIGTERM, SIGINT and SIGHUP ask the batch to stop after the current file
    (call the object: the batch's ``cancelled`` callable); a second signal stops at once."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[int, object] = {}

    def __call__(self) -> bool:
        return self.received is not None

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():  # handlers live only there
            self._previous = {sig: signal.signal(sig, self._handle) for sig in _STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        close_shared()

    def _handle(self, signum: int, _frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum)


def _sweep(paths: list[Path]) -> None:
    removed = sweep_leftovers(folders_of(paths))
    if removed:
        names = ", ".join(str(p) for p in removed)
        print(
            f"locdiff gps: removed {len(removed)} temporary file(s) left by an interrupted "
            f"write: {names}",
            file=sys.stderr,
        )


def _batch_report(results: Sequence[FileResult], stop: _StopOnSignal, command: str) -> int:
    """Report a batch; when a signal stopped it, the files not reached are summed up."""
    if stop.received is None:
        return _report(results, _written)
    reached = [r for r in results if r.ok or r.error.kind is not PhotoErrorKind.CANCELLED]
    code = _report(reached, _written)
    left = len(results) - len(reached)
    print(
        f"locdiff gps {command}: stopped by {stop.received.name}: {len(reached)} of "
        f"{len(results)} files done, {left} left untouched (run the same command "
        "again to do them; `locdiff gps undo` puts the done ones back)",
        file=sys.stderr,
    )
    return code


def _write(args: argparse.Namespace) -> int:
    config = _write_config(args)
    with _StopOnSignal() as stop:
        paths = _paths(args)
        _sweep(paths)
        results = write_gps(paths, args.lat, args.lon, args.alt, config, cancelled=stop)
    return _batch_report(results, stop, "write")


def _remove(args: argparse.Namespace) -> int:
    config = _write_config(args)
    with _StopOnSignal() as stop:
        paths = _paths(args)
        _sweep(paths)
        results = remove_gps(paths, config, cancelled=stop)
    return _batch_report(results, stop, "remove")


def _undo(args: argparse.Namespace) -> int:
    with _StopOnSignal() as stop:  # undo is short: a signal waits for it to finish
        results = undo_last_batch()
    code = _report(results, lambda r: r.value)
    if stop.received is not None:
        print(
            f"locdiff gps undo: {stop.received.name} received; the undo was finished first",
            file=sys.stderr,
        )
    return code


def _geotag(args: argparse.Namespace) -> int:
    from locdiff_core.photo import geotag
    from locdiff_core.photo.photo_time import TimeSettings, format_offset, parse_offset
    from locdiff_core.photo.track_match import MatchConfig
    from locdiff_core.photo.track_readers import read_track
    from locdiff_core.photo.tracks import TrackError

    try:
        tracks = [read_track(t) for t in args.track]
        offset = parse_offset(args.offset)
        match = MatchConfig(max_gap_s=args.max_gap, interpolate_s=args.interpolate)
    except (TrackError, ValueError) as exc:
        print(f"locdiff gps geotag: {exc}", file=sys.stderr)
        return 2
    for track in tracks:
        for note in track.notes:
            print(f"locdiff gps geotag: {track.path}: {note}", file=sys.stderr)
    clocks = geotag.read_times(_paths(args))
    guides = args.neighbours and any(r.ok and r.value.fix is not None for r in clocks)
    if not tracks and not guides:
        print(
            "locdiff gps geotag: nothing to match against: give --track FILE, or include "
            "photos that have a position",
            file=sys.stderr,
        )
        return 2
    try:
        zone, how = geotag.camera_zone(tracks, args.tz, clocks)
        settings = TimeSettings(zone=zone, offset=offset)
    except ValueError as exc:
        print(f"locdiff gps geotag: {exc}", file=sys.stderr)
        return 2
    print(f"camera zone {zone} ({how}), clock offset {format_offset(offset)}", file=sys.stderr)
    proposals = geotag.propose(clocks, tracks, settings, match, use_neighbours=args.neighbours)
    placed = [r for r in proposals if r.ok and r.value.placed]
    written: dict[Path, FileResult] = {}
    stopped = None
    if not args.dry_run and placed:
        config = _write_config(args)
        with _StopOnSignal() as stop:
            _sweep([r.path for r in placed])
            m = [r.value.match for r in placed]
            items = [(r.path, x.lat, x.lon, x.ele) for r, x in zip(placed, m, strict=True)]
            written = {w.path: w for w in write_gps_each(items, config, cancelled=stop)}
        stopped = stop.received
    show = _geotag_doc if args.json else _geotag_line
    lines = [show(r, written.get(r.path)) for r in proposals]
    for line, _ok in lines:
        print(line)
    summary = f"{len(placed)} of {len(proposals)} photos placed"
    if written:
        done = sum(w.ok for w in written.values())
        summary += f", {done} written"
    if stopped is not None:
        summary += f"; stopped by {stopped.name} (run the same command again for the rest)"
    print(summary, file=sys.stderr)
    return 0 if all(ok for _line, ok in lines) else 1


def _geotag_line(r: FileResult, written: FileResult | None) -> tuple[str, bool]:
    """One photo's line of ``geotag``, and whether it went well."""
    if not r.ok:
        return f"{r.path}: error: {r.error.message}", False
    p = r.value
    when = f"; taken {p.clock.capture.describe()} ({p.utc.how})" if p.utc else ""
    note = f"; note: {r.warning}" if r.warning else ""
    if not p.placed:
        return f"{r.path}: {p.match.why}{when}{note}", True
    m = p.match
    text = f"{r.path}: {_position_text(m.lat, m.lon, m.ele)} ({m.why}{when}){note}"
    if written is None:
        return text, True
    if written.ok:
        return f"{text}: {_written(written)}", True
    return f"{text}: error: {written.error.message}", False


def _geotag_doc(r: FileResult, written: FileResult | None) -> tuple[str, bool]:
    """One photo's JSON object of ``geotag --json``, and whether it went well."""
    if not r.ok:
        return json.dumps(_error_doc(r), ensure_ascii=False), False
    p, m = r.value, r.value.match
    doc = {
        "file": str(r.path),
        "ok": True,
        "placed": p.placed,
        "lat": m.lat,
        "lon": m.lon,
        "alt": m.ele,
        "track": m.track,
        "gap_s": m.gap_s,
        "why": m.why,
        "taken": p.clock.capture.local.isoformat() if p.clock.capture else None,
        "utc": dt.datetime.fromtimestamp(p.utc.seconds, dt.UTC).isoformat() if p.utc else None,
        "time_from": p.utc.how if p.utc else None,
        "note": r.warning or None,
        "written": None,
    }
    ok = True
    if written is not None:
        if written.ok:
            doc["written"] = _written(written)
        else:
            doc.update(ok=False, error=written.error.kind.name, message=written.error.message)
            ok = False
    return json.dumps(doc, ensure_ascii=False), ok


def _position_text(lat: float, lon: float, ele: float | None) -> str:
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    alt = "" if ele is None else f", {ele:.1f} m"
    return f"{abs(lat):.7f} {ns}, {abs(lon):.7f} {ew}{alt}"


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
    gps = sub.add_parser("gps", help="read, write, remove or geotag the GPS position of photos")
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
    tag = actions.add_parser("geotag", help="place photos by their time on GPS tracks")
    _add_write_options(tag)
    tag.add_argument(
        "--track",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a GPX, KML/KMZ, GeoJSON or CSV track (repeat for several)",
    )
    tag.add_argument(
        "--tz",
        metavar="ZONE",
        help="the camera's time zone, an IANA name such as Europe/Rome (default: "
        "the zone at the track's first fix); times with their own offset keep it",
    )
    tag.add_argument(
        "--offset",
        default="0",
        metavar="[+-]HH:MM:SS",
        help="added to the camera's clock to give the true time (a camera 90 s fast: -00:01:30)",
    )
    tag.add_argument(
        "--max-gap",
        type=float,
        default=60.0,
        metavar="S",
        help="use the nearest fix up to S seconds away (60)",
    )
    tag.add_argument(
        "--interpolate",
        type=float,
        default=300.0,
        metavar="S",
        help="place between two fixes up to S seconds apart (300)",
    )
    tag.add_argument(
        "--no-neighbours",
        dest="neighbours",
        action="store_false",
        help="do not use the photos among PATH that have a position as a track",
    )
    tag.add_argument("--dry-run", action="store_true", help="print the positions, write nothing")
    tag.add_argument("--json", action="store_true", help="one JSON object per photo and line")
    tag.set_defaults(func=_geotag)
