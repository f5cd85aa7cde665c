"""Location CSVs of the research datasets: one image id with its latitude and longitude per row.

MP16 and Im2GPS3k ship as CSV files whose header holds ``IMG_ID``, ``LAT`` and ``LON`` among
other columns; the image lives at ``ROOT / IMG_ID``. Header names are matched case-insensitively
with common aliases (:data:`ID_NAMES`, :data:`LAT_NAMES`, :data:`LON_NAMES`); commas or tabs
separate cells; a UTF-8 byte-order mark is accepted. A file without those columns, or one that is
not a regular file (a FIFO would block the read forever), is refused with a ``ValueError``; a bad
row (empty id, a coordinate that is not a number or out of range, a repeated id, an id that leads
outside ``ROOT``) becomes a :class:`BadRow` naming the file and line, and reading carries on.

An id leads outside ``ROOT`` when it is an absolute path, holds ``..``, or resolves through a
symbolic link (of the file or of any folder on the way) to a place outside ``ROOT``; such rows
are read only with ``allow_outside_root`` (``locdiff embed --allow-outside-root``).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from locdiff_core.photo.errors import PhotoError, PhotoErrorKind
from locdiff_core.photo.safe_io import RootGuard, check_regular

ID_NAMES = ("img_id", "image_id", "imgid", "id", "image", "img", "file", "filename", "path")
LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "lng", "long", "longitude")


@dataclass(frozen=True)
class LocatedImage:
    """One usable row: the image's id, its file and where it was taken (degrees)."""

    id: str
    path: Path
    lat: float
    lon: float


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be used; ``key`` is its id, or ``"FILE line N"`` when it has none."""

    key: str
    reason: str  # names the file and line


def _column(header: list[str], names: tuple[str, ...], what: str, path: Path) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise ValueError(
        f"{path} line 1: no {what} column (looked for {', '.join(names)}; found "
        f"{', '.join(h.strip() for h in header) or 'nothing'}); the header needs IMG_ID, LAT, LON"
    )


def _coordinate(cell: str, name: str, limit: float) -> tuple[float | None, str]:
    try:
        value = float(cell)
    except ValueError:
        return None, f"{name} {cell!r} is not a number"
    if not math.isfinite(value) or abs(value) > limit:
        return None, f"{name} {cell!r} is outside [-{limit:g}, {limit:g}] degrees"
    return value, ""


def check_csv_file(csv_path: str | os.PathLike) -> None:
    """Raise ``ValueError`` unless ``csv_path`` is a regular file (checked without opening it)."""
    try:
        check_regular(csv_path, what="a CSV file", doing="reading the CSV")
    except PhotoError as exc:
        if exc.kind is PhotoErrorKind.NOT_FOUND:
            raise ValueError(f"{csv_path}: no such CSV file") from exc
        raise ValueError(str(exc)) from exc


def read_location_csv(
    csv_path: str | os.PathLike,
    images_root: str | os.PathLike,
    *,
    allow_outside_root: bool = False,
) -> Iterator[LocatedImage | BadRow]:
    """Rows of ``csv_path`` in file order; image files are ``images_root / id`` (not opened).

    Ids leading outside ``images_root`` are bad rows unless ``allow_outside_root``.
    """
    csv_path, root = Path(csv_path), Path(images_root)
    check_csv_file(csv_path)
    guard = None if allow_outside_root else RootGuard(root)
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        reader = None
        try:
            first = fh.readline()
            if not first.strip():
                raise ValueError(f"{csv_path}: the file is empty; it needs a header IMG_ID,LAT,LON")
            fh.seek(0)
            reader = csv.reader(fh, delimiter="\t" if "\t" in first and "," not in first else ",")
            yield from _rows(csv_path, root, reader, guard)
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 1
            raise ValueError(f"{csv_path} line {line}: not valid CSV ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"{csv_path}: not UTF-8 text ({exc}); save it as UTF-8") from exc


def _rows(
    path: Path, root: Path, reader, guard: RootGuard | None
) -> Iterator[LocatedImage | BadRow]:
    header = next(reader)
    i_id = _column(header, ID_NAMES, "image id", path)
    i_lat = _column(header, LAT_NAMES, "latitude", path)
    i_lon = _column(header, LON_NAMES, "longitude", path)
    seen: dict[str, int] = {}
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue  # blank line
        line = reader.line_num
        where = f"{path} line {line}"
        if len(cells) <= max(i_id, i_lat, i_lon):
            yield BadRow(where, f"{where}: {len(cells)} cells, too few for the header")
            continue
        image_id = cells[i_id].strip()
        if not image_id:
            yield BadRow(where, f"{where}: the image id is empty")
            continue
        if image_id in seen:
            yield BadRow(where, f"{where}: id {image_id!r} repeats line {seen[image_id]}")
            continue
        seen[image_id] = line
        lat, lat_problem = _coordinate(cells[i_lat].strip(), "latitude", 90.0)
        lon, lon_problem = _coordinate(cells[i_lon].strip(), "longitude", 180.0)
        if lat is None or lon is None:
            yield BadRow(image_id, f"{where}: {lat_problem or lon_problem}")
            continue
        escape = guard.escape(image_id) if guard is not None else None
        if escape is not None:
            yield BadRow(
                image_id,
                f"{where}: image id {image_id!r} {escape}, so it is not read (ids are paths "
                f"inside {root}); fix the id, or pass --allow-outside-root if you trust this CSV",
            )
            continue
        yield LocatedImage(image_id, root / image_id, lat, lon)
