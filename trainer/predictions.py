"""The prediction CSV written by ``locdiff predict`` and read by ``locdiff eval``.

UTF-8, one header row, one row per input image, columns :data:`COLUMNS`:

* ``id``: the image's id in the dataset predicted on;
* ``best_lat, best_lon``: the best guess (``--best-guess``: the mode of the network's
  posterior, or the centre of the densest cluster of samples);
* ``centre_lat, centre_lon``: the paper's answer (geographic centre of the K decoded samples);
* ``radius50_km, radius90_km``: radii around the best guess holding 50% and 90% of the samples;
* ``candN_lat, candN_lon, candN_share`` for N = 1..3: the ranked candidate locations and their
  share of samples (or of probability); the cells of missing candidates are empty;
* ``engine``: the engine that made the guess (``geoclip``, ``locdiff`` or ``hybrid``; see
  :mod:`locdiff_core.engines`); files without the column read as engine ``""``.

Degrees are written with 6 decimals (0.1 m), km with 3 and shares with 4. Reading accepts a
UTF-8 byte-order mark and extra columns, and names the file, line and column of any problem.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from locdiff_core.atomic_file import atomic_write

MAX_CANDIDATES = 3
CANDIDATE_FIELDS = ("lat", "lon", "share")
SCALAR_COLUMNS = (
    "best_lat",
    "best_lon",
    "centre_lat",
    "centre_lon",
    "radius50_km",
    "radius90_km",
)
CANDIDATE_COLUMNS = tuple(
    tuple(f"cand{k}_{f}" for f in CANDIDATE_FIELDS) for k in range(1, MAX_CANDIDATES + 1)
)
COLUMNS = ("id", *SCALAR_COLUMNS, *(c for cand in CANDIDATE_COLUMNS for c in cand))
ENGINE_COLUMN = "engine"  # optional when reading
ENGINES = ("", "geoclip", "locdiff", "hybrid")
_DECIMALS = {"lat": 6, "lon": 6, "km": 3, "share": 4}

Candidate = tuple[float, float, float]  # lat, lon degrees; share of samples in [0, 1]


class PredictionFileError(ValueError):
    """A prediction CSV that cannot be read; the message names file, line and column."""


@dataclass(frozen=True)
class PredictionRow:
    """One image's prediction, as in one CSV row."""

    id: str
    best_lat: float
    best_lon: float
    centre_lat: float
    centre_lon: float
    radius50_km: float
    radius90_km: float
    candidates: tuple[Candidate, ...] = ()  # ranked, at most MAX_CANDIDATES
    engine: str = ""  # geoclip, locdiff, hybrid, or "" when not recorded

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(
                f"PredictionRow {self.id!r}: engine {self.engine!r} is none of "
                f"{', '.join(e for e in ENGINES if e)}"
            )
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"PredictionRow: id must be a non-empty string, got {self.id!r}")
        if len(self.candidates) > MAX_CANDIDATES:
            raise ValueError(
                f"PredictionRow {self.id!r}: {len(self.candidates)} candidates; the CSV holds "
                f"the top {MAX_CANDIDATES}, pass candidates[:{MAX_CANDIDATES}]"
            )
        if any(len(c) != len(CANDIDATE_FIELDS) for c in self.candidates):
            raise ValueError(
                f"PredictionRow {self.id!r}: each candidate must be (lat, lon, share), got "
                f"{self.candidates!r}"
            )
        # numpy and torch scalars become floats, so rows compare and print alike
        for column in SCALAR_COLUMNS:
            object.__setattr__(self, column, self._float(column, getattr(self, column)))
        candidates = tuple(
            tuple(self._float(n, v) for n, v in zip(names, cand, strict=True))
            for names, cand in zip(CANDIDATE_COLUMNS, self.candidates, strict=False)
        )
        object.__setattr__(self, "candidates", candidates)
        for column, value in self.numbers():
            problem = value_problem(column, value)
            if problem:
                raise ValueError(f"PredictionRow {self.id!r}: {column} = {value!r} {problem}")

    @classmethod
    def from_prediction(cls, image_id: str, p) -> PredictionRow:
        """The row of a :class:`locdiff_core.predictor.LocationPrediction`."""
        return cls(
            id=image_id,
            best_lat=p.best[0],
            best_lon=p.best[1],
            centre_lat=p.centre[0],
            centre_lon=p.centre[1],
            radius50_km=p.radius50_km,
            radius90_km=p.radius90_km,
            candidates=tuple((c.lat, c.lon, c.share) for c in p.candidates[:MAX_CANDIDATES]),
            engine=str(getattr(p, "engine", "") or ""),
        )

    def _float(self, column: str, value) -> float:
        if not isinstance(value, (str, bytes, bool)):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
        raise ValueError(f"PredictionRow {self.id!r}: {column} = {value!r} is not a number")

    def numbers(self) -> Iterator[tuple[str, float]]:
        """``(column, value)`` for every filled numeric cell, in column order."""
        for column in SCALAR_COLUMNS:
            yield column, getattr(self, column)
        for names, cand in zip(CANDIDATE_COLUMNS, self.candidates, strict=False):
            yield from zip(names, cand, strict=True)


def value_problem(column: str, value: float) -> str | None:
    """Why ``value`` cannot stand in ``column`` (as a phrase), or ``None`` if it can."""
    if not math.isfinite(value):
        return "is not finite"
    kind = column.rsplit("_", 1)[1]
    if kind == "lat" and not -90.0 <= value <= 90.0:
        return "is outside [-90, 90] degrees"
    if kind == "lon" and not -180.0 <= value <= 180.0:
        return "is outside [-180, 180] degrees"
    if kind == "km" and value < 0:
        return "is negative"
    if kind == "share" and not 0.0 <= value <= 1.0:
        return "is outside [0, 1]"
    return None


def write_predictions(path: str | os.PathLike, rows: Iterable[PredictionRow]) -> int:
    """Write the CSV atomically (nothing is left on error); returns the number of rows."""
    path = Path(path)
    seen: set[str] = set()
    with atomic_write(path, text=True) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow((*COLUMNS, ENGINE_COLUMN))
        for row in rows:
            if row.id in seen:
                raise ValueError(f"{path}: id {row.id!r} is predicted twice; ids must be unique")
            seen.add(row.id)
            writer.writerow(_cells(row))
    return len(seen)


def _cells(row: PredictionRow) -> list[str]:
    cells = [row.id]
    for column, value in row.numbers():
        cells.append(f"{value:.{_DECIMALS[column.rsplit('_', 1)[1]]}f}")
    missing = MAX_CANDIDATES - len(row.candidates)
    return [*cells, *[""] * (missing * len(CANDIDATE_FIELDS)), row.engine]


def read_predictions(path: str | os.PathLike) -> list[PredictionRow]:
    """Read and validate a prediction CSV written by :func:`write_predictions`."""
    path = Path(path)
    reader = None
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            return _parse(path, reader)
    except FileNotFoundError as exc:
        raise PredictionFileError(
            f"{path}: no such file; write it with `locdiff predict --out {path}`"
        ) from exc
    except OSError as exc:
        raise PredictionFileError(f"{path}: cannot be read ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise PredictionFileError(f"{path}: not UTF-8 text ({exc}); save it as UTF-8") from exc
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        raise PredictionFileError(f"{path} line {line}: not a valid CSV file ({exc})") from exc


def _parse(path: Path, reader) -> list[PredictionRow]:
    header = next(reader, None)
    if header is None:
        raise PredictionFileError(f"{path}: the file is empty; it needs the header {_header()}")
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise PredictionFileError(
            f"{path} line 1: missing column(s) {', '.join(missing)}; the header must hold "
            + _header()
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise PredictionFileError(f"{path} line 1: column(s) {', '.join(repeated)} repeat")
    position = {name: i for i, name in enumerate(header)}
    rows: list[PredictionRow] = []
    line_of: dict[str, int] = {}
    for cells in reader:
        if not cells:
            continue  # blank line
        line = reader.line_num
        if len(cells) != len(header):
            raise PredictionFileError(
                f"{path} line {line}: {len(cells)} cells but the header has {len(header)}"
            )
        row = _parse_row(f"{path} line {line}", {n: cells[i].strip() for n, i in position.items()})
        if row.id in line_of:
            raise PredictionFileError(
                f"{path} line {line}, column id: {row.id!r} repeats line {line_of[row.id]}; "
                "ids must be unique"
            )
        line_of[row.id] = line
        rows.append(row)
    return rows


def _header() -> str:
    return ",".join(COLUMNS)


def _parse_row(where: str, cell: dict[str, str]) -> PredictionRow:
    if not cell["id"]:
        raise PredictionFileError(f"{where}, column id: empty; every row needs an id")
    values = {c: _number(where, c, cell[c]) for c in SCALAR_COLUMNS}
    candidates: list[Candidate] = []
    for k, names in enumerate(CANDIDATE_COLUMNS):
        filled = [n for n in names if cell[n]]
        if not filled:
            continue
        if len(filled) < len(names):
            empty = next(n for n in names if not cell[n])
            raise PredictionFileError(
                f"{where}, column {empty}: empty while {filled[0]} is set; a candidate needs "
                "lat, lon and share"
            )
        if len(candidates) < k:
            raise PredictionFileError(
                f"{where}, column {names[0]}: set while candidate {len(candidates) + 1} is "
                "empty; candidates fill from cand1"
            )
        lat, lon, share = (_number(where, n, cell[n]) for n in names)
        candidates.append((lat, lon, share))
    engine = cell.get(ENGINE_COLUMN, "")
    if engine not in ENGINES:
        raise PredictionFileError(
            f"{where}, column {ENGINE_COLUMN}: {engine!r} is none of geoclip, locdiff, hybrid"
        )
    return PredictionRow(id=cell["id"], **values, candidates=tuple(candidates), engine=engine)


def _number(where: str, column: str, text: str) -> float:
    if not text:
        raise PredictionFileError(f"{where}, column {column}: empty; a number is needed")
    try:
        value = float(text)
    except ValueError:
        raise PredictionFileError(f"{where}, column {column}: {text!r} is not a number") from None
    problem = value_problem(column, value)
    if problem:
        raise PredictionFileError(f"{where}, column {column}: {text} {problem}")
    return value
