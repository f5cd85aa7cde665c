"""Datasets read memory-mapped, so training needs memory for a batch, not for the data set.

``numpy.savez`` (and so :func:`trainer.data.save_embeddings` and ``locdiff embed``) stores
each array as a ``.npy`` member of an uncompressed ("stored") zip archive: the array's bytes
lie in the file as they are in memory. :func:`open_embeddings` maps every shard once and views
its ``embedding`` and ``id`` members where they lie; a training process then reads from disk
(through the page cache, which processes on one machine share) only the rows of its own
batches. The small per-row arrays (``lat``, ``lon``, ``norm``) are read into memory.

What is checked when a data set is opened: every shard's arrays, shapes and dtypes, that the
shards agree (width, encoder), every coordinate and norm, and that the ids are unique (by a
64-bit hash per id, with the strings compared where two hashes meet). The embedding values
are checked as rows are read (:meth:`Column.rows`): a non-finite value raises
:class:`~trainer.data.DatasetError` naming the shard, the row and the column, when the batch
that holds it is formed.

A shard written by ``numpy.savez_compressed`` cannot be mapped; it is refused with a message
naming the file and ``locdiff dataset convert``, which rewrites such shards once
(:func:`convert_dataset`).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
import sys
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from locdiff_core.atomic_file import atomic_write
from trainer.data import (
    DatasetError,
    EmbeddingSet,
    check_embedding_shape,
    check_present,
    check_rows,
    dataset_files,
    load_embeddings,
)

CONVERT_HINT = "convert the dataset once with `locdiff dataset convert {path}`"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a zip member's local file header (30 bytes)
_CHUNK = 200_000  # ids read at a time when they are checked for repeats


class Column:
    """A column of a data set (``embedding`` or ``id``) over its shards, read by rows.

    ``column[rows]`` (an int array) gathers those rows into memory in the order given;
    ``column[i]`` is one row; ``np.asarray(column)`` reads all of it. Embedding rows come back
    as float32 and are checked finite.
    """

    def __init__(
        self, name: str, parts: list, files: tuple[Path, ...], maps=None, readers=None
    ) -> None:
        self.name, self.parts, self.files = name, parts, files
        self.maps = maps or [None] * len(parts)  # the shards' mmap objects (None: not mapped)
        # Positional readers of the rows (one open file each): batches are read with them.
        self.readers = readers if readers and all(readers) else None
        if self.readers:
            weakref.finalize(self, _close, [r.fd for r in self.readers])
        sizes = [len(p) for p in parts]
        self.starts = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self.shape = (int(self.starts[-1]), *parts[0].shape[1:])
        self._kept = np.result_type(*(p.dtype for p in parts))  # the widest shard's
        self.dtype = np.dtype(np.float32) if name == "embedding" else self._kept

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, rows):
        if isinstance(rows, (int, np.integer)):
            return self.rows(np.asarray([rows % len(self) if rows < 0 else rows]))[0]
        if isinstance(rows, slice):
            return self.rows(np.arange(len(self))[rows])
        return self.rows(np.asarray(rows))

    def __array__(self, dtype=None, copy=None):
        out = self.rows(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (int64 indices into the whole data set), in their order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self.starts, rows, side="right") - 1
        local = rows - self.starts[shard]
        if self.readers and rows.size <= _PREAD_ROWS:
            out = self._read(shard, local)
        elif len(self.parts) == 1:
            out = np.asarray(self.parts[0][local])
            _release(self.maps[0])
        else:
            out = np.empty((rows.size, *self.shape[1:]), dtype=self._kept)
            order = np.argsort(shard, kind="stable")
            bounds = np.flatnonzero(np.diff(shard[order])) + 1
            for group in np.split(order, bounds) if rows.size else []:
                k = int(shard[group[0]])
                out[group] = self.parts[k][local[group]]
                _release(self.maps[k])
        if self.name == "embedding":
            out = self._checked(out.astype(np.float32, copy=False), shard, local)
        return out

    def _read(self, shard: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Rows read with one positional read each (no page of the file is mapped)."""
        out = np.empty((shard.size, *self.shape[1:]), dtype=self._kept)
        for i, (k, row) in enumerate(zip(shard.tolist(), local.tolist(), strict=True)):
            r = self.readers[k]
            into = out[i] if r.dtype == self._kept else np.empty(self.shape[1:], r.dtype)
            try:
                got = os.preadv(r.fd, [into], r.offset + row * r.row_bytes)
            except OSError as exc:
                raise DatasetError(f"{r.file}: cannot be read ({exc.strerror or exc})") from exc
            if got != r.row_bytes:
                raise DatasetError(
                    f"{r.file}: cut short at array 'embedding' row {row} (the file changed "
                    "after training started?); write it again"
                )
            if into is not out[i]:
                out[i] = into
        return out

    def _checked(self, out: np.ndarray, shard: np.ndarray, local: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(out)
        if bad.any():
            i, col = (int(k) for k in np.argwhere(bad)[0])
            raise DatasetError(
                f"{self.files[int(shard[i])]}: array 'embedding' row {int(local[i])}, column "
                f"{col} is {float(out[i, col])}, not a finite float32; drop or re-embed that image"
            )
        return out


@dataclass(frozen=True)
class _Reader:
    """Where a shard's embedding rows lie in its file."""

    file: Path
    fd: int
    offset: int  # of row 0
    row_bytes: int
    dtype: np.dtype


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _release(view: mmap.mmap | None) -> None:
    """Unmap the pages of ``view`` that this process touched: they stay in the page cache
    (shared, reclaimable) but no longer count as its resident memory. A large page-cache folio
    is mapped whole on a fault, so without this a few thousand scattered rows would map
    gigabytes of a data set into the process's resident set."""
    if view is not None and _DONTNEED is not None:
        view.madvise(_DONTNEED)


_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)
_PREAD_ROWS = 65_536  # a read of more rows than this goes through the map, in file order


class _GeneratedIds:
    """The ids of a shard without an ``id`` array: ``"<file stem>:<row>"``."""

    def __init__(self, stem: str, n: int) -> None:
        self.stem, self.n = stem, n
        self.shape = (n,)
        self.dtype = np.dtype(f"<U{len(stem) + 1 + len(str(max(n - 1, 0)))}")

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray([f"{self.stem}:{i}" for i in np.asarray(rows).tolist()], dtype=str)


@dataclass(frozen=True)
class _Shard:
    file: Path
    embedding: np.ndarray  # (N, D) view of the file
    view: mmap.mmap | None  # the file's map
    reader: _Reader | None  # reads its embedding rows
    ids: np.ndarray | _GeneratedIds
    lat: np.ndarray
    lon: np.ndarray
    encoder: dict | None
    norm: np.ndarray | None


def open_embeddings(path: str | os.PathLike) -> EmbeddingSet:
    """The data set at ``path`` (a ``.npz`` file or a folder of shards) with its embeddings
    and ids mapped from the files (:class:`Column`); row for row what
    :func:`~trainer.data.load_embeddings` reads."""
    files = dataset_files(path)
    _allow_open_files(len(files), path)
    shards = [_map_shard(f, Path(path)) for f in files]
    first = shards[0]
    dim = first.embedding.shape[1]
    for shard in shards[1:]:
        if shard.embedding.shape[1] != dim:
            raise DatasetError(
                f"{shard.file}: embedding has {shard.embedding.shape[1]} columns but "
                f"{first.file} has {dim}; every shard must come from the same image encoder"
            )
        if shard.encoder != first.encoder:
            raise DatasetError(
                f"{shard.file}: encoder {shard.encoder} differs from {first.file}'s "
                f"{first.encoder}; embed every shard with the same encoder"
            )
    norms = [s.norm for s in shards]
    maps = [s.view for s in shards]
    data = EmbeddingSet(
        embedding=Column(
            "embedding", [s.embedding for s in shards], files, maps, [s.reader for s in shards]
        ),
        lat=np.concatenate([s.lat for s in shards]),
        lon=np.concatenate([s.lon for s in shards]),
        ids=Column("id", [s.ids for s in shards], files, maps),
        encoder=first.encoder,
        files=files,
        norm=None if any(n is None for n in norms) else np.concatenate(norms),
    )
    if len(data) == 0:
        raise DatasetError(f"{path}: the dataset holds no rows; it needs at least one embedding")
    _check_unique(data.ids)
    return data


def _allow_open_files(count: int, path) -> None:
    """Each shard keeps a file open to read rows from, and its map keeps another (before
    Python 3.13); make room for them."""
    if os.name != "posix":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * count + 256  # the map's own descriptor, and the one rows are read with
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise DatasetError(
                f"{path}: {count} shards to map, but this process may open only {hard} files; "
                "raise the limit (ulimit -n) or write the dataset with a larger --shard-size"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def _map_shard(file: Path, dataset: Path) -> _Shard:
    try:
        fh = open(file, "rb")  # noqa: SIM115 - closed below; the map keeps what it needs
    except OSError as exc:
        raise DatasetError(f"{file}: cannot be read ({exc.strerror or exc})") from exc
    with fh:
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            load_embeddings(file)  # says what the file is instead
            raise DatasetError(f"{file}: not a .npz archive") from None
        with archive:
            members = [i for i in archive.infolist() if i.filename.endswith(".npy")]
            size = os.fstat(fh.fileno()).st_size
            view = _map_file(fh, size) if size else None
            offsets: dict[str, int] = {}
            arrays = {
                i.filename[:-4]: _member(file, dataset, fh, view, i, offsets) for i in members
            }
    _release(view)
    source = str(file)
    check_present(source, arrays)
    emb = arrays["embedding"]
    check_embedding_shape(source, emb)
    lat, lon, ids, encoder, norm = check_rows(source, arrays, emb.shape)
    reader = None
    if hasattr(os, "preadv") and "embedding" in offsets:
        row_bytes = emb.shape[1] * emb.dtype.itemsize
        reader = _Reader(
            file, os.open(file, os.O_RDONLY), offsets["embedding"], row_bytes, emb.dtype
        )
    return _Shard(
        file,
        emb,
        view,
        reader,
        _GeneratedIds(file.stem, emb.shape[0]) if ids is None else ids,
        lat,
        lon,
        encoder,
        norm,
    )


def _map_file(fh, size: int) -> mmap.mmap:
    extra = {"trackfd": False} if sys.version_info >= (3, 13) else {}
    view = mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ, **extra)
    if hasattr(mmap, "MADV_RANDOM"):
        view.madvise(mmap.MADV_RANDOM)  # a batch reads scattered rows: no read-ahead
    return view


def _member(
    file: Path, dataset: Path, fh, view, info: zipfile.ZipInfo, offsets: dict[str, int]
) -> np.ndarray:
    """A view of one stored member's array; ``offsets[name]`` is where its bytes start, for
    a C-ordered array with bytes."""
    name = info.filename[:-4]
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        raise DatasetError(
            f"{file}: array '{name}' is compressed (numpy.savez_compressed), so it cannot be "
            "read memory-mapped; " + CONVERT_HINT.format(path=dataset)
        )
    fh.seek(info.header_offset)
    header = fh.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise DatasetError(f"{file}: array '{name}' is damaged (no zip header); write it again")
    name_len, extra_len = _LOCAL_HEADER.unpack(header)[-2:]
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    fh.seek(start)
    try:
        version = np.lib.format.read_magic(fh)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(fh)
    except ValueError as exc:
        raise DatasetError(f"{file}: array '{name}' cannot be read ({exc})") from exc
    if dtype.hasobject:
        raise DatasetError(
            f"{file}: array '{name}' holds Python objects (dtype=object), which are never "
            "unpickled; store strings as a str array, e.g. np.asarray(ids, dtype=str)"
        )
    offset = fh.tell()
    count = int(np.prod(shape, dtype=np.int64))
    if offset + count * dtype.itemsize > start + info.file_size:
        raise DatasetError(f"{file}: array '{name}' is cut short; write the file again")
    if count == 0 or view is None:
        return np.empty(shape, dtype=dtype)
    flat = np.frombuffer(view, dtype=dtype, count=count, offset=offset)
    if not fortran:
        offsets[name] = offset
    return flat.reshape(shape, order="F" if fortran else "C")


def _check_unique(ids: Column) -> None:
    hashes = np.empty(len(ids), dtype=np.int64)
    for start in range(0, len(ids), _CHUNK):
        piece = ids.rows(np.arange(start, min(start + _CHUNK, len(ids)))).tolist()
        hashes[start : start + len(piece)] = np.fromiter(map(hash, piece), np.int64, len(piece))
    ordered = np.sort(hashes)
    if not (ordered[1:] == ordered[:-1]).any():
        return
    order = np.argsort(hashes, kind="stable")
    same = np.flatnonzero(hashes[order][1:] == hashes[order][:-1])
    first_rows, second_rows = order[same], order[same + 1]
    equal = ids.rows(first_rows) == ids.rows(second_rows)
    if not equal.any():
        return  # hash collisions between different ids
    k = int(np.argmin(np.where(equal, np.maximum(first_rows, second_rows), len(ids))))
    a, b = sorted((int(first_rows[k]), int(second_rows[k])))

    def where(row: int) -> str:
        f = int(np.searchsorted(ids.starts, row, side="right")) - 1
        return f"{ids.files[f]} row {row - int(ids.starts[f])}"

    raise DatasetError(
        f"{where(b)}: array 'id' repeats {str(ids[b])!r} from {where(a)}; ids must be unique"
    )


@dataclass(frozen=True)
class Conversion:
    file: Path
    converted: bool  # False: already mappable, left alone


def convert_dataset(path: str | os.PathLike) -> list[Conversion]:
    """Rewrite every compressed shard of a data set uncompressed, so it can be mapped.

    Each shard is read and validated, written beside itself and renamed over it (atomic), then
    mapped and compared with what was read: values, ids, encoder. Shards already stored are
    left untouched; so a second run changes nothing.
    """
    done = []
    for file in dataset_files(path):
        if _is_stored(file):
            done.append(Conversion(file, False))
            continue
        data = load_embeddings(file)
        with np.load(file, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        with atomic_write(file) as fh:
            np.savez(fh, **arrays)
        again = open_embeddings(file)
        same = (
            np.array_equal(np.asarray(again.embedding), data.embedding)
            and np.array_equal(again.lat, data.lat)
            and np.array_equal(again.lon, data.lon)
            and np.array_equal(np.asarray(again.ids), data.ids)
            and again.encoder == data.encoder
        )
        if not same:  # pragma: no cover - a write the disk did not keep
            raise DatasetError(f"{file}: the converted shard does not read back as written")
        done.append(Conversion(file, True))
    return done


def _is_stored(file: Path) -> bool:
    try:
        with zipfile.ZipFile(file) as archive:
            return all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        load_embeddings(file)  # says what the file is
        raise DatasetError(f"{file}: not a .npz archive ({exc})") from exc


def describe(data: EmbeddingSet) -> dict:
    """What ``locdiff dataset info`` prints: rows, width, shards, bytes, encoder."""
    size = sum(f.stat().st_size for f in data.files)
    return {
        "rows": len(data),
        "dim": data.dim,
        "dtype": str(data.embedding.parts[0].dtype),
        "shards": len(data.files),
        "bytes": size,
        "encoder": json.dumps(data.encoder) if data.encoder else None,
        "norm": data.norm is not None,
    }
