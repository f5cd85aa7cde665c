"""Embedding datasets: image embeddings with the coordinates they were taken at.

The model trains on frozen image embeddings (paper Sec. 4.5: a CLIP encoder conditions the
diffusion), so a dataset is a table of embeddings and locations, stored as

* one ``.npz`` file, or
* a directory of ``.npz`` shards, read in sorted name order (hidden files are skipped),

with these arrays (one row per image):

==============  ===========  =================================================================
``embedding``   ``(N, D)``   float16 or float32 (float64 is accepted and narrowed to float32)
``lat``         ``(N,)``     latitude in degrees, ``[-90, 90]``
``lon``         ``(N,)``     longitude in degrees; wrapped into ``[-180, 180)``
``id``          ``(N,)``     optional strings; ``"<file stem>:<row>"`` where absent
``encoder``     ``()``       optional JSON such as ``{"name": "ViT-L-14", "pretrained":
                             "openai", "dim": 768}``; every shard must say the same
``norm``        ``(N,)``     optional float32, each row's length before it was normalised
                             (``locdiff embed`` writes it): ``embedding * norm`` is the raw
                             image feature, which GeoCLIP's head reads
==============  ===========  =================================================================

Training reads a dataset memory-mapped (:mod:`trainer.mapped_data`), which needs its arrays
stored uncompressed, as :func:`save_embeddings` and ``numpy.savez`` write them.

Files are read with ``allow_pickle=False``: a dataset can never run code. Every problem raises
:class:`DatasetError` naming the file, the array and the first bad row.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from locdiff_core.atomic_file import atomic_write
from locdiff_core.geo import wrap_lon

_HOW_TO_WRITE = "write datasets with trainer.data.save_embeddings or numpy.savez"


class DatasetError(ValueError):
    """A dataset file or directory that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class EmbeddingSet:
    """An embedding dataset in memory, rows in file order (shards concatenated)."""

    embedding: np.ndarray  # (N, D) float32
    lat: np.ndarray  # (N,) float64 degrees
    lon: np.ndarray  # (N,) float64 degrees in [-180, 180)
    ids: np.ndarray  # (N,) str, unique
    encoder: dict | None  # the image encoder's identity, if the files record it
    files: tuple[Path, ...]  # the files read, in order
    norm: np.ndarray | None = None  # (N,) float32 lengths of the raw features, if recorded

    def raw_features(self) -> np.ndarray:
        """``(N, D)`` float32 raw image features (``embedding * norm``)."""
        if self.norm is None:
            where = self.files[0] if self.files else "the dataset"
            raise DatasetError(
                f"{where}: keeps unit-length embeddings only (no 'norm' array), and GeoCLIP reads "
                "the raw features; build the dataset again with `locdiff embed`, or predict from "
                "the photos (--images)"
            )
        return self.embedding * self.norm[:, None]

    def __len__(self) -> int:
        return int(self.lat.shape[0])

    @property
    def dim(self) -> int:
        """Embedding width D."""
        return int(self.embedding.shape[1])


def dataset_files(path: str | os.PathLike) -> tuple[Path, ...]:
    """The ``.npz`` files of a dataset: ``path`` itself, or the shards of a directory by name."""
    path = Path(path)
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix == ".npz" and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        if not files:
            raise DatasetError(f"{path}: the directory holds no .npz shards; {_HOW_TO_WRITE}")
        return tuple(files)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory; pass a .npz file or a folder")
    return (path,)


def load_embeddings(path: str | os.PathLike) -> EmbeddingSet:
    """Read and validate a dataset (a ``.npz`` file or a directory of shards)."""
    shards = [_read_shard(f) for f in dataset_files(path)]
    first = shards[0]
    for shard in shards[1:]:
        if shard.dim != first.dim:
            raise DatasetError(
                f"{shard.files[0]}: embedding has {shard.dim} columns but {first.files[0]} has "
                f"{first.dim}; every shard must come from the same image encoder"
            )
        if shard.encoder != first.encoder:
            raise DatasetError(
                f"{shard.files[0]}: encoder {shard.encoder} differs from {first.files[0]}'s "
                f"{first.encoder}; embed every shard with the same encoder"
            )
    if len(shards) == 1:
        data = first
    else:
        data = EmbeddingSet(
            embedding=np.concatenate([s.embedding for s in shards]),
            lat=np.concatenate([s.lat for s in shards]),
            lon=np.concatenate([s.lon for s in shards]),
            ids=np.concatenate([s.ids for s in shards]),
            encoder=first.encoder,
            files=tuple(s.files[0] for s in shards),
            norm=None
            if any(s.norm is None for s in shards)
            else np.concatenate([s.norm for s in shards]),
        )
    if len(data) == 0:
        raise DatasetError(f"{path}: the dataset holds no rows; it needs at least one embedding")
    _check_unique_ids(data, [len(s) for s in shards])
    return data


def save_embeddings(
    path: str | os.PathLike,
    embedding,
    lat,
    lon,
    ids=None,
    encoder: dict | None = None,
    norm=None,
) -> Path:
    """Validate and write one ``.npz`` dataset file atomically; returns its path.

    ``embedding`` (N, D) float16/float32 (float64 is stored as float32); ``lat``, ``lon`` (N,)
    degrees; ``ids`` N strings; ``encoder`` a JSON-serialisable dict; ``norm`` (N,) the raw
    features' lengths. Numpy arrays, CPU tensors and sequences are accepted.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise DatasetError(f"{path}: a dataset file name must end in .npz; rename it")
    arrays = {"embedding": _as_numpy(embedding), "lat": _as_numpy(lat), "lon": _as_numpy(lon)}
    if ids is not None:
        arrays["id"] = np.asarray([str(i) for i in _as_numpy(ids).reshape(-1)], dtype=str)
    if encoder is not None:
        try:
            arrays["encoder"] = np.asarray(json.dumps(encoder, sort_keys=True))
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: encoder {encoder!r} is not JSON-serialisable") from exc
    if norm is not None:
        arrays["norm"] = _as_numpy(norm)
    checked = _validate(str(path), arrays)
    if arrays["embedding"].dtype != np.float16:  # half precision stays half on disk
        arrays["embedding"] = checked.embedding
    arrays["lat"], arrays["lon"] = checked.lat, checked.lon
    if checked.norm is not None:
        arrays["norm"] = checked.norm
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
    return path


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _read_shard(file: Path) -> EmbeddingSet:
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{file}: not a .npz archive ({exc}); {_HOW_TO_WRITE}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(
            f"{file}: holds a single .npy array, not a .npz archive of named arrays; "
            + _HOW_TO_WRITE
        )
    with archive:
        arrays = {name: _read_array(file, archive, name) for name in archive.files}
    return _validate(str(file), arrays, default_id_prefix=file.stem, files=(file,))


def _read_array(file: Path, archive, name: str) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DatasetError(
                f"{file}: array '{name}' holds Python objects (dtype=object), which are never "
                "unpickled; store strings as a str array, e.g. np.asarray(ids, dtype=str)"
            ) from exc
        raise DatasetError(f"{file}: array '{name}' cannot be read ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(
            f"{file}: array '{name}' is damaged ({exc}); write the file again"
        ) from exc


def _validate(
    source: str,
    arrays: dict[str, np.ndarray],
    *,
    default_id_prefix: str = "",
    files: tuple[Path, ...] = (),
) -> EmbeddingSet:
    check_present(source, arrays)
    embedding = _check_embedding(source, arrays["embedding"])
    lat, lon, ids, encoder, norm = check_rows(source, arrays, embedding.shape)
    if ids is None:
        n = embedding.shape[0]
        ids = np.asarray([f"{default_id_prefix}:{i}" for i in range(n)], dtype=str)
    return EmbeddingSet(embedding, lat, lon, ids, encoder, files, norm)


def check_present(source: str, arrays: dict[str, np.ndarray]) -> None:
    """Refuses a shard without the arrays every dataset needs."""
    missing = [n for n in ("embedding", "lat", "lon") if n not in arrays]
    if missing:
        found = ", ".join(sorted(arrays)) or "none"
        raise DatasetError(
            f"{source}: missing array(s) {', '.join(repr(n) for n in missing)} (found: {found}); "
            f"a dataset needs 'embedding', 'lat' and 'lon'"
        )


def check_rows(source: str, arrays: dict[str, np.ndarray], shape: tuple[int, int]):
    """The per-row arrays beside an embedding of ``shape``, checked: ``(lat, lon, ids,
    encoder, norm)``; ``ids`` is None where the file has none."""
    n = shape[0]
    lat = _check_coordinate(source, "lat", arrays["lat"], n)
    lon = _check_coordinate(source, "lon", arrays["lon"], n)
    bad = (lat < -90.0) | (lat > 90.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{source}: lat row {i} is {lat[i]:.6g}, outside [-90, 90] degrees "
            "(did you swap lat and lon?)"
        )
    ids = _check_ids(source, arrays["id"], n) if "id" in arrays else None
    encoder = _check_encoder(source, arrays["encoder"]) if "encoder" in arrays else None
    if encoder is not None and "dim" in encoder and encoder["dim"] != shape[1]:
        raise DatasetError(
            f"{source}: array 'encoder' says dim {encoder['dim']} but 'embedding' has "
            f"{shape[1]} columns; the embeddings do not come from that encoder"
        )
    # Only longitudes outside the range move: wrapping in-range values would perturb their bits.
    inside = (lon >= -180.0) & (lon < 180.0)
    lon = np.where(inside, lon, wrap_lon(torch.from_numpy(lon)).numpy())
    norm = _check_norm(source, arrays["norm"], n) if "norm" in arrays else None
    return lat, lon, ids, encoder, norm


def _check_norm(source: str, values: np.ndarray, n: int) -> np.ndarray:
    _check_vector(source, "norm", values, n)
    if values.dtype.kind != "f":
        raise DatasetError(f"{source}: array 'norm' has dtype {values.dtype}; it must be float")
    norm = values.astype(np.float32)
    bad = ~(np.isfinite(norm) & (norm > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{source}: array 'norm' row {row} is {norm[row]}, not a positive length"
        )
    return norm


def _check_embedding(source: str, emb: np.ndarray) -> np.ndarray:
    check_embedding_shape(source, emb)
    with np.errstate(over="ignore"):  # overflow to inf is reported below with its row
        out = emb.astype(np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        row, col = (int(k) for k in np.argwhere(bad)[0])
        raise DatasetError(
            f"{source}: array 'embedding' row {row}, column {col} is {float(emb[row, col])}, not a "
            "finite float32; drop or re-embed that image"
        )
    return out


def check_embedding_shape(source: str, emb: np.ndarray) -> None:
    """Refuses an embedding array that is not (N, D) floats with D >= 1."""
    if emb.ndim != 2:
        raise DatasetError(
            f"{source}: array 'embedding' has shape {emb.shape}; it must be (N, D), one row "
            "per image"
        )
    if emb.dtype.kind != "f":
        raise DatasetError(
            f"{source}: array 'embedding' has dtype {emb.dtype}; it must be float16 or float32"
        )
    if emb.shape[1] == 0:
        raise DatasetError(f"{source}: array 'embedding' has 0 columns; D must be at least 1")


def _check_coordinate(source: str, name: str, values: np.ndarray, n: int) -> np.ndarray:
    _check_vector(source, name, values, n)
    if values.dtype.kind not in "fiu":
        raise DatasetError(
            f"{source}: array '{name}' has dtype {values.dtype}; it must hold numbers (degrees)"
        )
    out = values.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{source}: array '{name}' row {i} is {out[i]}; coordinates must be finite"
        )
    return out


def _check_vector(source: str, name: str, values: np.ndarray, n: int) -> None:
    if values.ndim != 1:
        raise DatasetError(
            f"{source}: array '{name}' has shape {values.shape}; it must be (N,), one value "
            "per image"
        )
    if values.shape[0] != n:
        raise DatasetError(
            f"{source}: array '{name}' has {values.shape[0]} rows but 'embedding' has {n} "
            f"(row {min(n, values.shape[0])} is the first without a partner); every array "
            "needs one row per image"
        )


def _check_ids(source: str, ids: np.ndarray, n: int) -> np.ndarray:
    _check_vector(source, "id", ids, n)
    if ids.dtype.kind == "S":
        try:
            ids = np.char.decode(ids, "utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{source}: array 'id' holds bytes that are not UTF-8 ({exc}); store str ids"
            ) from exc
    elif ids.dtype.kind in "iu":
        ids = ids.astype(str)
    elif ids.dtype.kind != "U":
        raise DatasetError(
            f"{source}: array 'id' has dtype {ids.dtype}; it must hold strings, "
            "e.g. np.asarray(ids, dtype=str)"
        )
    empty = np.char.str_len(ids) == 0
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise DatasetError(f"{source}: array 'id' row {i} is empty; every image needs an id")
    return ids


def _check_encoder(source: str, value: np.ndarray) -> dict:
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise DatasetError(
            f"{source}: array 'encoder' has shape {value.shape} and dtype {value.dtype}; it must "
            'be one JSON string, e.g. np.asarray(json.dumps({"name": "ViT-L-14", ...}))'
        )
    text = value.item()
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        encoder = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{source}: array 'encoder' is not valid JSON ({exc}): {text!r}"
        ) from exc
    if not isinstance(encoder, dict):
        raise DatasetError(
            f"{source}: array 'encoder' must hold a JSON object such as "
            f'{{"name": "ViT-L-14", "pretrained": "openai", "dim": 768}}; got {text!r}'
        )
    return encoder


def _check_unique_ids(data: EmbeddingSet, rows_per_file: list[int]) -> None:
    order = np.argsort(data.ids, kind="stable")
    same = np.flatnonzero(data.ids[order][1:] == data.ids[order][:-1])
    if same.size == 0:
        return
    # Of all repeats, report the one whose second occurrence comes first in the files.
    second = order[same + 1]
    k = int(np.argmin(second))
    first_row, second_row = int(order[same[k]]), int(second[k])
    starts = np.cumsum([0, *rows_per_file])

    def where(row: int) -> str:
        f = int(np.searchsorted(starts, row, side="right")) - 1
        return f"{data.files[f]} row {row - int(starts[f])}"

    raise DatasetError(
        f"{where(second_row)}: array 'id' repeats {str(data.ids[second_row])!r} from "
        f"{where(first_row)}; ids must be unique"
    )
