"""A train/validation split whose validation photos lie at least ``min_km`` from every
training photo, so validation numbers are not inflated by near-duplicates (OSV-5M keeps its
splits 1 km apart).

The sphere is cut into cells about ``cell_km`` across (latitude bands, each cut into
equal-width longitude cells), much larger than ``min_km``. Cells, in a seeded random order,
join the validation set while they do not carry it more than 10% past ``val_fraction`` of the
rows; photos in one place therefore fall on one side. Training photos within ``min_km`` of any
validation photo (the neighbours across a cell border) are then dropped: a k-d tree on unit
vectors answers that with chord distances.

The split is written to ``RUN_DIR/split.json`` (the validation ids and the counts), and a
resumed run reads it back rather than splitting again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from locdiff_core.atomic_file import atomic_write
from locdiff_core.geo import EARTH_RADIUS_KM

SPLIT_FILE = "split.json"
_FORMAT = "locdiff-split"
_KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0
_PIECE = 200_000  # ids compared at a time when a split is read back


@dataclass(frozen=True)
class Split:
    """Row indices (sorted) of the training, validation and dropped photos."""

    train: np.ndarray
    val: np.ndarray
    dropped: np.ndarray  # would-be training photos within min_km of a validation photo


def default_cell_km(min_km: float) -> float:
    """Cells 25 times the separation (and at least 25 km) keep the dropped border share small."""
    return max(25.0 * min_km, 25.0)


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.deg2rad(np.asarray(lat, np.float64)), np.deg2rad(np.asarray(lon, np.float64))
    return np.stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)), axis=1)


def grid_cells(lat: np.ndarray, lon: np.ndarray, cell_km: float) -> np.ndarray:
    """An integer cell id per location for cells about ``cell_km`` across."""
    num_bands = max(1, math.ceil(180.0 * _KM_PER_DEGREE / cell_km))
    band = np.minimum(
        ((np.asarray(lat) + 90.0) / 180.0 * num_bands).astype(np.int64), num_bands - 1
    )
    mid_lat = np.deg2rad((band + 0.5) / num_bands * 180.0 - 90.0)
    per_band = np.maximum(1, np.ceil(360.0 * _KM_PER_DEGREE * np.cos(mid_lat) / cell_km))
    frac = (np.asarray(lon) + 180.0) % 360.0 / 360.0
    col = np.minimum((frac * per_band).astype(np.int64), per_band.astype(np.int64) - 1)
    return band * (2 * num_bands + 2) + col  # no band has more columns than that


def drop_near(
    lat: np.ndarray, lon: np.ndarray, rows: np.ndarray, val_lat, val_lon, min_km: float
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into those at least ``min_km`` from every validation location and those
    closer (``(keep, dropped)``)."""
    rows = np.asarray(rows, dtype=np.int64)
    if min_km <= 0 or len(rows) == 0 or len(val_lat) == 0:
        return rows, rows[:0]
    tree = cKDTree(_unit_vectors(val_lat, val_lon))
    chord = 2.0 * math.sin(min(min_km / EARTH_RADIUS_KM, math.pi) / 2.0)
    dist, _ = tree.query(
        _unit_vectors(lat[rows], lon[rows]), k=1, distance_upper_bound=chord * 1.01
    )
    km = 2.0 * np.arcsin(np.minimum(dist, 2.0) / 2.0) * EARTH_RADIUS_KM  # inf -> pi R
    near = np.isfinite(dist) & (km < min_km)
    return rows[~near], rows[near]


def split_by_distance(
    lat: np.ndarray,
    lon: np.ndarray,
    val_fraction: float,
    min_km: float,
    seed: int = 0,
    cell_km: float | None = None,
) -> Split:
    """Hold out about ``val_fraction`` of the rows, every one at least ``min_km`` from all
    training rows. Deterministic for a given ``seed``."""
    n = len(lat)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    target = val_fraction * n
    if target < 1.0:
        raise ValueError(
            f"--val-fraction {val_fraction} of {n} rows is less than one photo; raise it"
        )
    cell_km = default_cell_km(min_km) if cell_km is None else cell_km
    cells = grid_cells(lat, lon, cell_km)
    ids, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(ids))
    chosen = np.zeros(len(ids), dtype=bool)
    limit, total = max(1.1 * target, 1.0), 0
    for c in order:
        if total >= target:
            break
        if total + counts[c] <= limit:
            chosen[c] = True
            total += counts[c]
    if total == 0:
        raise ValueError(
            f"every {cell_km:.0f} km cell holds more than {limit:.0f} of the {n} photos, so no "
            f"validation set of {val_fraction:.0%} can be cut from whole cells; raise "
            "--val-fraction or lower --val-min-km"
        )
    in_val = chosen[inverse]
    val = np.flatnonzero(in_val)
    train, dropped = drop_near(lat, lon, np.flatnonzero(~in_val), lat[val], lon[val], min_km)
    if len(train) == 0:
        raise ValueError(
            f"no training photo is {min_km} km from the validation photos; lower --val-min-km"
        )
    return Split(train, val, dropped)


def write_split(path: Path, split: Split, ids: np.ndarray, settings: dict) -> None:
    """``split.json``: the settings, the counts and the validation ids."""
    record = {
        "format": _FORMAT,
        "version": 1,
        **settings,
        "num_train": len(split.train),
        "num_val": len(split.val),
        "num_dropped": len(split.dropped),
        "val_ids": [str(i) for i in ids[split.val]],
    }
    with atomic_write(path, text=True) as fh:
        json.dump(record, fh)


def read_split(path: Path, ids, lat, lon, min_km: float) -> Split:
    """The split recorded in ``path`` for the rows ``ids`` (an array, or a mapped column read
    in pieces; training rows within ``min_km`` of the validation rows are dropped again)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ValueError(
            f"{path}: missing; the run was split with --val-fraction, and a resume needs the "
            "same validation photos"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from exc
    if (
        not isinstance(record, dict)
        or record.get("format") != _FORMAT
        or not isinstance(record.get("val_ids"), list)
    ):
        raise ValueError(f"{path}: not a LocDiff split file")
    wanted = np.asarray(sorted({str(v) for v in record["val_ids"]}), dtype=str)
    in_val, found = np.zeros(len(ids), dtype=bool), np.zeros(len(wanted), dtype=bool)
    for start in range(0, len(ids), _PIECE) if len(wanted) else ():
        piece = np.asarray(ids[start : start + _PIECE]).astype(str)
        pos = np.minimum(np.searchsorted(wanted, piece), len(wanted) - 1)
        hit = wanted[pos] == piece
        in_val[start : start + len(piece)] = hit
        found[pos[hit]] = True
    if not found.all():
        absent = set(wanted[~found].tolist())
        missing = [v for v in record["val_ids"] if str(v) in absent]
        raise ValueError(
            f"{path}: validation id {missing[0]!r} ({len(missing)} in all) is not in the data "
            "set; resume with the data set the run started with"
        )
    val = np.flatnonzero(in_val)
    train, dropped = drop_near(lat, lon, np.flatnonzero(~in_val), lat[val], lon[val], min_km)
    return Split(train, val, dropped)
