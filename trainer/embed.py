"""Building an embedding dataset from images: ``locdiff embed`` (paper Sec. 4.5 and 5.1).

Two sources:

* a photo folder (``photos``): every photo under it, labelled with the GPS position read from
  its EXIF, XMP or sidecar; its key is the path relative to the folder;
* a location CSV (``csv`` + ``images``): the research datasets' format (MP16, Im2GPS3k), see
  :mod:`trainer.location_csv`; its key is the image id.

Located images are embedded by the frozen image encoder in batches (DataLoader workers decode
the photos) and written as shards of the :mod:`trainer.data` format with the encoder's identity;
``manifest.jsonl`` records what became of every input (:mod:`trainer.manifest`). A rerun skips
what the manifest records, so an interrupted run resumes where it stopped; an existing dataset is
only ever added to, unless ``overwrite`` empties it first.

Several processes (``torchrun``, one per GPU) share a run through :class:`Share`: each takes
every N-th input still to do, writes its own part folder (``ranks/rank-NNN``, the same shard
and manifest format and commit), and rank 0 merges the parts into the dataset at the end
(:func:`trainer.manifest.merge_parts`); a later run of any size finishes an interrupted one.

Inputs stay inside their folder: a CSV id that is an absolute path, holds ``..`` or resolves
through a symbolic link outside ``images`` is a bad row, and a symbolic link under ``photos``
that leads outside it is recorded as unreadable, unless ``allow_outside_root``. FIFOs, sockets
and devices are refused without being opened.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from locdiff_core.image_encoder import ImageEncoder
from locdiff_core.photo.errors import PhotoError, PhotoErrorKind, call_for_file
from locdiff_core.photo.gps import read_gps
from locdiff_core.photo.reading import find_photos
from trainer.location_csv import BadRow, LocatedImage, check_csv_file, read_location_csv
from trainer.manifest import (
    Entry,
    Outcome,
    ShardedWriter,
    clear,
    merge_parts,
    part_folder,
    recorded,
    skipped_keys,
)

StageProgress = Callable[[str, int, int], None]  # (stage, done, total)
_EXAMPLES = 5


@dataclass(frozen=True)
class EmbedConfig:
    out: Path
    photos: Path | None = None  # a folder of geotagged photos, or
    csv: Path | None = None  # a location CSV (IMG_ID, LAT, LON) with
    images: Path | None = None  # the folder its image ids are relative to
    batch_size: int = 64
    num_workers: int = 0
    shard_size: int = 4096
    retry_failed: bool = False  # look again at files recorded as failed
    allow_outside_root: bool = False  # read CSV ids and linked photos outside their folder
    overwrite: bool = False  # delete the shards and manifest already in ``out`` first

    def validate(self) -> None:
        if (self.photos is None) == (self.csv is None):
            raise ValueError("give either --photos DIR or --csv FILE --images ROOT")
        if self.csv is not None and self.images is None:
            raise ValueError("--csv needs --images ROOT, the folder its image ids are under")
        for folder in (self.photos, self.images):
            if folder is not None and not Path(folder).is_dir():
                raise ValueError(f"{folder}: no such folder")
        if self.csv is not None:
            check_csv_file(self.csv)
        if self.batch_size < 1 or self.shard_size < 1 or self.num_workers < 0:
            raise ValueError("--batch-size and --shard-size must be >= 1, --workers >= 0")


@dataclass
class EmbedSummary:
    """What a run did, and what the whole dataset now holds."""

    counts: Counter = field(default_factory=Counter)  # Outcome -> files, whole manifest
    new: Counter = field(default_factory=Counter)  # Outcome -> files, this run
    skipped: int = 0  # inputs already recorded before this run
    problems: list[Entry] = field(default_factory=list)  # first failures of this run
    notes: list[str] = field(default_factory=list)  # what was repaired, rebuilt or deleted
    cancelled: bool = False


def outcome_of(error: PhotoError) -> Outcome:
    """The manifest outcome of a photo that could not be used."""
    if error.kind is PhotoErrorKind.NOT_FOUND:
        return Outcome.MISSING
    if error.kind in (PhotoErrorKind.NO_GPS, PhotoErrorKind.INVALID_GPS):
        return Outcome.NO_GPS
    return Outcome.UNREADABLE


@dataclass(frozen=True)
class Share:
    """This process's part of an embed run by ``world`` processes (``torchrun``): the inputs
    at positions ``rank, rank + world, ...`` of the list still to do. ``agree(message)``
    gathers every process's error message (``None``: none) and returns the first, so all of
    them stop together when one cannot go on."""

    rank: int = 0
    world: int = 1
    agree: Callable[[str | None], str | None] = lambda message: message


def _photo_inputs(
    root: Path,
    done: set[str],
    progress: StageProgress | None,
    cancel,
    allow_outside_root: bool,
    share: Share,
) -> Iterator[LocatedImage | Entry]:
    left_out: list[tuple[Path, str]] = []
    found = find_photos(
        [root],
        allow_outside_root=allow_outside_root,
        on_skip=lambda path, why: left_out.append((path, why)),
    )
    todo: list[tuple[Path, str, str | None]] = []
    for path, why in left_out:
        key = path.relative_to(root).as_posix()
        if key not in done:
            todo.append((path, key, why))
    todo += [(p, key, None) for p in found if (key := p.relative_to(root).as_posix()) not in done]
    todo = todo[share.rank :: share.world]
    if progress is not None:
        progress("reading GPS", 0, len(todo))
    for n, (path, key, why) in enumerate(todo, 1):
        if cancel is not None and cancel():
            return
        if why is not None:
            reason = f"{why}; pass --allow-outside-root to read photos linked from elsewhere"
            yield Entry(key, Outcome.UNREADABLE, reason)
            continue
        result = call_for_file(path, read_gps)  # an OSError is an error of this photo alone
        if not result.ok:
            yield Entry(key, outcome_of(result.error), result.error.message)
        else:
            fix = result.value
            if fix is None:
                yield Entry(key, Outcome.NO_GPS, "no GPS position in EXIF, XMP or a sidecar")
            else:
                yield LocatedImage(key, path, fix.lat, fix.lon)
        if progress is not None:
            progress("reading GPS", n, len(todo))


def _csv_inputs(
    csv: Path, images: Path, done: set[str], allow_outside_root: bool, share: Share
) -> Iterator[LocatedImage | Entry]:
    n = 0
    for row in read_location_csv(csv, images, allow_outside_root=allow_outside_root):
        key = row.key if isinstance(row, BadRow) else row.id
        if key in done:
            continue
        if n % share.world == share.rank:
            yield Entry(row.key, Outcome.BAD_ROW, row.reason) if isinstance(row, BadRow) else row
        n += 1


def _together(share: Share, action: Callable[[], object]):
    """``action()`` on every process; when it fails on any of them, all raise."""
    try:
        result, error = action(), None
    except (ValueError, OSError) as exc:
        result, error = None, exc
    message = share.agree(None if error is None else str(error))
    if error is not None:
        raise error
    if message is not None:
        raise ValueError(message)
    return result


def build_dataset(
    config: EmbedConfig,
    encoder: ImageEncoder,
    *,
    progress: StageProgress | None = None,
    cancel: Callable[[], bool] | None = None,
    share: Share | None = None,
) -> EmbedSummary:
    """Embed the located images of ``config``'s source into ``config.out`` (see the module).

    ``cancel()`` stops between batches; what was done so far is committed. With ``share``
    (one of several processes), this process embeds its share of the inputs into its part
    folder (``ranks/rank-NNN``) and rank 0 merges every part into the dataset at the end; a
    rerun by any number of processes skips what the dataset and its parts record, and merges
    the parts an interrupted run left.
    """
    config.validate()
    share = share or Share()
    out = Path(config.out)
    with contextlib.ExitStack() as stack:
        main: ShardedWriter | None = None
        cleared = 0

        def open_main() -> None:
            nonlocal main, cleared
            stack.enter_context(_locked(out))
            cleared = clear(out) if config.overwrite else 0
            main = ShardedWriter(out, encoder.identity, config.shard_size)

        _together(share, open_main if share.rank == 0 else lambda: None)
        writer = main
        if share.world > 1:

            def open_part() -> ShardedWriter:
                folder = part_folder(out, share.rank)
                stack.enter_context(_locked(folder))
                return ShardedWriter(folder, encoder.identity, config.shard_size)

            writer = _together(share, open_part)
        known = main.entries if main is not None else None  # read once, by its writer
        entries = _together(share, lambda: recorded(out, known))
        done = skipped_keys(entries, config.retry_failed)
        summary = EmbedSummary(skipped=len(done), notes=list(writer.notes))
        if main is not None and main is not writer:
            summary.notes[:0] = main.notes
        if cleared:
            summary.notes.insert(
                0, f"{out}: --overwrite deleted {cleared} shard(s) and the manifest"
            )
        _together(share, lambda: None)  # every process has read what is done
        outside = config.allow_outside_root
        if config.photos is not None:
            inputs = _photo_inputs(Path(config.photos), done, progress, cancel, outside, share)
        else:
            inputs = _csv_inputs(Path(config.csv), Path(config.images), done, outside, share)
        _embed(inputs, writer, encoder, config, summary, progress, cancel)
        summary.cancelled = cancel is not None and cancel()
        _together(share, lambda: None)  # every part is complete

        def merge() -> None:
            if main is not None:
                summary.notes.extend(merge_parts(main))

        _together(share, merge)  # a merge that fails stops every process with its message
        summary.counts = Counter(e.outcome for e in (main or writer).entries.values())
    return summary


def _embed(
    inputs: Iterator[LocatedImage | Entry],
    writer: ShardedWriter,
    encoder: ImageEncoder,
    config: EmbedConfig,
    summary: EmbedSummary,
    progress: StageProgress | None,
    cancel: Callable[[], bool] | None,
) -> None:
    located: list[LocatedImage] = []
    for item in inputs:
        if isinstance(item, Entry):
            _record_failure(writer, summary, item)
        else:
            located.append(item)

    def embed_progress(n: int, total: int) -> None:
        if progress is not None:
            progress("embedding", n, total)

    results = encoder.embed_paths(
        [item.path for item in located],
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        progress=embed_progress,
        cancel=cancel,
        normalize=False,
    )
    for i, result in results:
        item = located[i]
        if isinstance(result, PhotoError):
            _record_failure(writer, summary, Entry(item.id, outcome_of(result), result.message))
        else:
            unit, norm = unit_and_norm(result)
            writer.add_row(item.id, unit, item.lat, item.lon, norm)
            summary.new[Outcome.EMBEDDED] += 1
    writer.commit()


def unit_and_norm(raw: np.ndarray) -> tuple[np.ndarray, float]:
    """A raw image feature ``(D,)`` as the unit row LocDiffusion reads and its length (the
    same normalisation as :meth:`ImageEncoder.embed_batch`)."""
    feature = torch.from_numpy(np.asarray(raw, dtype=np.float32))
    unit = torch.nn.functional.normalize(feature[None], dim=-1)[0]
    return unit.numpy(), float(feature.norm())


def _record_failure(writer: ShardedWriter, summary: EmbedSummary, entry: Entry) -> None:
    writer.add_failure(entry)
    summary.new[entry.outcome] += 1
    if len(summary.problems) < _EXAMPLES:
        summary.problems.append(entry)


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on ``folder`` so two runs never write one dataset (POSIX only)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one run at a time is up to the user
        yield
        return
    with open(folder / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ValueError(
                f"{folder}: another `locdiff embed` is writing this dataset; wait for it to end"
            ) from exc
        yield
