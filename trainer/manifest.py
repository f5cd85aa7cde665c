"""A dataset folder built from images: embedding shards plus a manifest of every input file.

    DATASET_DIR/shard-00000.npz, shard-00001.npz, ...   (trainer.data format, with the encoder)
    DATASET_DIR/manifest.jsonl                          (one JSON object per input file)

A manifest line reads ``{"key": ..., "outcome": ..., "reason": ..., "shard": ...}``: the file's
path relative to the photo folder (or its CSV id), one of :class:`Outcome`, why it was skipped,
and the shard holding its embedding. When a key appears twice the later line wins (a rerun with
``retry_failed`` looks at earlier failures again). Lines are written with every non-ASCII
character escaped and split only at ``\n``, so a name holding U+2028, U+0085 or any other
Unicode line separator stays on its line (manifests that hold such characters raw still read).

A shard and its manifest lines are committed together: the shard is written atomically (temporary
file, fsync, rename), then its lines are appended in one write and fsynced. Opening the folder
again (:class:`ShardedWriter`) repairs whatever an interruption left between those two steps: a
torn last line is cut, the one shard after the last one named that no line names is deleted, a
shard whose lines were cut short is rewritten to the rows the manifest names, and lines naming a
missing shard are dropped. So an interrupted run loses at most the shard in progress, and the
manifest is always the truth.

Nothing else is ever deleted: a folder whose shards the manifest does not account for (several
unnamed shards, an unreadable one) is refused with a ``ValueError`` that names the folder and the
ways on; a folder with shards but no manifest gets its manifest rebuilt from the shards' ids
(their failures are not recorded there, so they are looked at again). :func:`clear` empties a
dataset for ``locdiff embed --overwrite``.

A run by several processes writes one such folder per process under ``DATASET_DIR/ranks/``;
:func:`merge_parts` moves their shards and lines into the dataset (:meth:`ShardedWriter.adopt`:
the shard hard-linked under the next name, then its lines, the same two steps as a commit),
and :func:`recorded` is what the dataset and its parts hold together.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from locdiff_core.atomic_file import atomic_write, fsync_dir
from locdiff_core.encoder_identity import require_same_encoder
from trainer.data import load_embeddings, save_embeddings

MANIFEST = "manifest.jsonl"
RANKS = "ranks"  # DATASET/ranks/rank-NNN: what each process of a multi-process embed writes
_SHARD = re.compile(r"^shard-(\d{5,})\.npz$")
_PART = re.compile(r"^rank-\d{3,}$")


class Outcome(StrEnum):
    EMBEDDED = "embedded"
    NO_GPS = "no_gps"
    UNREADABLE = "unreadable"
    MISSING = "missing"
    BAD_ROW = "bad_row"


@dataclass(frozen=True)
class Entry:
    """One manifest line: what became of one input file."""

    key: str
    outcome: Outcome
    reason: str = ""
    shard: str | None = None

    def to_json(self) -> str:
        fields = {"key": self.key, "outcome": self.outcome.value, "reason": self.reason}
        return json.dumps({**fields, "shard": self.shard}, ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Entry:
        try:
            raw = json.loads(text)
            return cls(
                str(raw["key"]), Outcome(raw["outcome"]), raw.get("reason") or "", raw.get("shard")
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{where}: not a manifest line ({exc!r}); the manifest was edited by hand? "
                f"fix or delete that line, or delete {MANIFEST} to have it rebuilt from the shards"
            ) from exc


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npz"


def read_manifest(folder: Path) -> list[Entry]:
    """Every complete line of ``folder/manifest.jsonl`` (none when it does not exist)."""
    return _read(folder)[0]


def _read(folder: Path) -> tuple[list[Entry], bool]:
    """The complete lines, and whether a torn last line (no newline) follows them."""
    path = folder / MANIFEST
    if not path.exists():
        return [], False
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    entries = []
    # Split at b"\n" only: str.splitlines() would also end a line at U+2028, U+0085, ...
    for n, raw in enumerate(data[:end].split(b"\n"), 1):
        where = f"{path} line {n}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{where}: not UTF-8 text ({exc}); fix or delete that line, or delete "
                f"{MANIFEST} to have it rebuilt from the shards"
            ) from exc
        if text.strip():
            entries.append(Entry.from_json(text, where))
    return entries, end != len(data)


def latest(entries: Iterable[Entry]) -> dict[str, Entry]:
    """The entry that counts for each key: its last one."""
    return {e.key: e for e in entries}


class ShardedWriter:
    """Adds embeddings and outcomes to a dataset folder, committing a shard at a time."""

    def __init__(self, folder: Path, encoder: dict, shard_size: int) -> None:
        self.folder, self.encoder, self.shard_size = Path(folder), encoder, shard_size
        self.folder.mkdir(parents=True, exist_ok=True)
        self.notes: list[str] = []  # what opening the folder repaired or rebuilt, for the user
        self.entries = _recover(self.folder, self.notes)
        self._check_encoder()
        shards = [int(m.group(1)) for p in self._shards() if (m := _SHARD.match(p.name))]
        self.next_index = max(shards, default=-1) + 1
        self._rows: list[tuple[str, np.ndarray, float, float, float]] = []
        self._failures: list[Entry] = []

    def _shards(self) -> list[Path]:
        return _shard_files(self.folder)

    def _check_encoder(self) -> None:
        shards = self._shards()
        if not shards:
            return
        recorded = load_embeddings(shards[0]).encoder or {}
        require_same_encoder(
            recorded,
            self.encoder,
            lambda want, got, problem: (
                f"{self.folder} was built with {want}; this run uses {got} ({problem}); rerun "
                "with that encoder's --model/--pretrained/--weights, pass --overwrite to build "
                "the dataset again with this one, or choose a new --out"
            ),
        )

    def done(self, retry_failed: bool = False) -> set[str]:
        """Keys a rerun skips: all recorded ones, or only the embedded ones."""
        return skipped_keys(self.entries, retry_failed)

    def add_row(self, key: str, embedding: np.ndarray, lat: float, lon: float, norm: float) -> None:
        """One embedded image: its unit ``embedding`` and the raw feature's length ``norm``."""
        self._rows.append((key, embedding, lat, lon, norm))
        if len(self._rows) >= self.shard_size:
            self.commit()

    def add_failure(self, entry: Entry) -> None:
        self._failures.append(entry)
        if len(self._failures) >= self.shard_size:
            self.commit()

    def commit(self) -> str | None:
        """Write the pending shard (if any rows) and append its lines; returns the shard name."""
        if not self._rows and not self._failures:
            return None
        name = None
        lines = list(self._failures)
        if self._rows:
            name = shard_name(self.next_index)
            keys, emb, lat, lon, norm = zip(*self._rows, strict=True)
            save_embeddings(
                self.folder / name, np.stack(emb), lat, lon, keys, self.encoder, norm=norm
            )
            lines += [Entry(k, Outcome.EMBEDDED, "", name) for k in keys]
            self.next_index += 1
        _append(self.folder / MANIFEST, lines)
        self.entries.update(latest(lines))
        self._rows, self._failures = [], []
        return name

    def adopt(self, shard: Path | None, lines: list[Entry]) -> str | None:
        """Take in a shard written elsewhere (a rank's part folder, on the same disk) with its
        manifest lines, or failure lines alone (``shard`` None), as :meth:`commit` commits its
        own: the shard (hard-linked, else copied) under the next name, then its lines."""
        name = None
        if shard is not None:
            name = shard_name(self.next_index)
            target = self.folder / name
            try:
                os.link(shard, target)
            except OSError:  # a file system without hard links
                with atomic_write(target) as fh:
                    fh.write(shard.read_bytes())
            fsync_dir(self.folder)
            lines = [Entry(e.key, e.outcome, e.reason, name) for e in lines]
            self.next_index += 1
        if lines:
            _append(self.folder / MANIFEST, lines)
            self.entries.update(latest(lines))
        return name


def part_folders(folder: Path) -> list[Path]:
    """The part folders of a dataset that several processes embed into (``ranks/rank-NNN``),
    in name order."""
    ranks = folder / RANKS
    if not ranks.is_dir():
        return []
    return sorted(p for p in ranks.iterdir() if p.is_dir() and _PART.match(p.name))


def part_folder(folder: Path, rank: int) -> Path:
    return folder / RANKS / f"rank-{rank:03d}"


def skipped_keys(entries: dict[str, Entry], retry_failed: bool = False) -> set[str]:
    """Keys a rerun skips: all recorded ones, or only the embedded ones."""
    if not retry_failed:
        return set(entries)
    return {k for k, e in entries.items() if e.outcome is Outcome.EMBEDDED}


def recorded(folder: Path, known: dict[str, Entry] | None = None) -> dict[str, Entry]:
    """What a dataset records for each key: its manifest's lines (``known``: those already
    read, by the dataset's :class:`ShardedWriter`), then its part folders'."""
    if known is None:
        known = latest(read_manifest(folder)) if folder.is_dir() else {}
    entries = dict(known)
    for part in part_folders(folder):
        entries.update(latest(read_manifest(part)))
    return entries


def merge_parts(main: ShardedWriter) -> list[str]:
    """Move every part folder's shards and lines into the dataset, then delete the part
    folders; returns what was merged, for the user. Each part is repaired first (as a rerun
    repairs a folder), and what the dataset already holds from an interrupted merge is not
    taken twice, so a merge stopped anywhere is finished by the next one."""
    notes = []
    for part in part_folders(main.folder):
        writer = ShardedWriter(part, main.encoder, main.shard_size)
        notes += writer.notes
        shards = embedded = failures = 0
        blocks: dict[str | None, list[Entry]] = {}
        for entry in read_manifest(part):
            blocks.setdefault(entry.shard, []).append(entry)
        for shard, lines in blocks.items():
            if shard is None:
                lines = [e for e in lines if main.entries.get(e.key) != e]
                failures += len(lines)
                main.adopt(None, lines)
                continue
            have = [main.entries.get(e.key) for e in lines]
            if all(h is not None and h.outcome is Outcome.EMBEDDED and h.shard for h in have):
                continue  # merged before an interruption
            main.adopt(part / shard, lines)
            shards, embedded = shards + 1, embedded + len(lines)
        shutil.rmtree(part)
        notes.append(
            f"{part}: merged {shards} shard(s) ({embedded} embedded) and {failures} failure(s) "
            f"into {main.folder / MANIFEST}"
        )
    ranks = main.folder / RANKS
    if ranks.is_dir() and not any(ranks.iterdir()):
        ranks.rmdir()
    return notes


def _append(path: Path, entries: list[Entry]) -> None:
    block = "".join(e.to_json() + "\n" for e in entries).encode("utf-8")
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(block)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_dir(path.parent)


def _shard_ids(path: Path) -> list[str] | None:
    """The ids of a shard (its other arrays are not read), ``None`` when it is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return [str(i) for i in archive["id"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _recover(folder: Path, notes: list[str]) -> dict[str, Entry]:
    """Repair what an interruption left (see the module docstring); returns the latest entries.

    Blocks are appended one after another, so only the last shard named can have lost lines:
    its rows are checked against them; every other shard named must exist, and the only shard
    no line may name is the one committed after it.
    """
    for stale in folder.glob(".*.tmp"):  # atomic_write's temporaries of a killed process
        stale.unlink(missing_ok=True)
    if not (folder / MANIFEST).exists():
        return latest(_rebuild(folder, notes))
    entries, torn = _read(folder)
    listed: dict[str, set[str]] = {}
    for e in entries:
        if e.shard:
            listed.setdefault(e.shard, set()).add(e.key)
    _check_unnamed(folder, listed)
    present = {shard: keys for shard, keys in listed.items() if (folder / shard).is_file()}
    missing = sorted(set(listed) - set(present))
    if listed:
        last = next(e.shard for e in reversed(entries) if e.shard)
        ids = _shard_ids(folder / last) if last in present else None
        if last in present and ids is None:
            raise ValueError(
                f"{folder / last}: cannot be read, so {folder} is left as it is; move that shard "
                f"out of the folder (its images are embedded again), {_WAYS_ON}"
            )
        present[last] = listed[last] & set(ids or ())
        if ids is not None and present[last] != set(ids):
            _keep_rows(folder / last, present[last])
            notes.append(
                f"{folder / last}: kept the {len(present[last])} of its {len(ids)} rows the "
                "manifest names (an interrupted run); the others are embedded again"
            )
    keep = [e for e in entries if not e.shard or e.key in present.get(e.shard, ())]
    for path in _shard_files(folder):
        if not present.get(path.name):
            path.unlink()  # committed without its lines, or emptied above
            notes.append(
                f"{path}: removed; an interrupted run wrote it without its manifest lines "
                "(its images are embedded again)"
            )
    if missing:
        notes.append(
            f"{folder}: {', '.join(missing)} named in {MANIFEST} but not found; "
            "their images are embedded again"
        )
    if torn or len(keep) != len(entries):
        with atomic_write(folder / MANIFEST) as fh:
            fh.write("".join(e.to_json() + "\n" for e in keep).encode("utf-8"))
    return latest(keep)


_WAYS_ON = "or pass --overwrite to build the dataset again from scratch, or choose a new --out"


def _shard_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _SHARD.match(p.name))


def _index(name: str) -> int:
    m = _SHARD.match(name)
    return int(m.group(1)) if m else -1


def _check_unnamed(folder: Path, listed: dict[str, set[str]]) -> None:
    """Refuse shards the manifest does not name, except the one an interrupted commit leaves:
    the single shard numbered right after the last one named."""
    unnamed = [p.name for p in _shard_files(folder) if p.name not in listed]
    after_last = shard_name(max(map(_index, listed), default=-1) + 1)
    if not unnamed or unnamed == [after_last]:
        return
    shown = ", ".join(unnamed[:3]) + (f" and {len(unnamed) - 3} more" if len(unnamed) > 3 else "")
    raise ValueError(
        f"{folder}: {MANIFEST} names none of the shards {shown}, which no interrupted run can "
        f"leave, so nothing is changed; to keep them, delete {MANIFEST} and run again (it is "
        "rebuilt from every shard, and the files that had failed are looked at again), or move "
        f"them out of the folder; {_WAYS_ON}"
    )


def _rebuild(folder: Path, notes: list[str]) -> list[Entry]:
    """The manifest of a folder whose shards lost it, written from the shards' ids: every row is
    an embedded image (failures are not in shards, so they are looked at again)."""
    shards = _shard_files(folder)
    if not shards:
        return []
    entries: list[Entry] = []
    first_seen: dict[str, str] = {}
    for path in shards:
        ids = _shard_ids(path)
        if not ids:
            raise ValueError(
                f"{folder}: {MANIFEST} is missing and {path.name} cannot be read (or holds no "
                f"rows), so the manifest cannot be rebuilt from the shards; move {path.name} out "
                f"of the folder (its images are embedded again), {_WAYS_ON}"
            )
        for key in ids:
            if key in first_seen:
                raise ValueError(
                    f"{folder}: {MANIFEST} is missing and id {key!r} is in both "
                    f"{first_seen[key]} and {path.name}, so these shards are not one dataset; "
                    f"move one of them out of the folder, {_WAYS_ON}"
                )
            first_seen[key] = path.name
        entries += [Entry(key, Outcome.EMBEDDED, "", path.name) for key in ids]
    with atomic_write(folder / MANIFEST) as fh:
        fh.write("".join(e.to_json() + "\n" for e in entries).encode("utf-8"))
    notes.append(
        f"{folder}: {MANIFEST} was missing; rebuilt it from {len(shards)} shard(s) holding "
        f"{len(entries)} embedded images (files that had failed are looked at again)"
    )
    return entries


def clear(folder: Path) -> int:
    """Delete a dataset's shards, manifest and part folders (``locdiff embed --overwrite``);
    other files are left alone. Returns how many shards were deleted."""
    shards = _shard_files(folder) if folder.is_dir() else []
    for path in shards:
        path.unlink()
    for part in part_folders(folder):
        shards.extend(_shard_files(part))
        shutil.rmtree(part)
    (folder / MANIFEST).unlink(missing_ok=True)
    if folder.is_dir():
        fsync_dir(folder)
    return len(shards)


def _keep_rows(path: Path, keys: set[str]) -> None:
    if not keys:
        path.unlink()
        return
    data = load_embeddings(path)
    rows = np.flatnonzero(np.isin(data.ids, sorted(keys)))
    norm = None if data.norm is None else data.norm[rows]
    save_embeddings(
        path,
        data.embedding[rows],
        data.lat[rows],
        data.lon[rows],
        data.ids[rows],
        data.encoder,
        norm=norm,
    )
