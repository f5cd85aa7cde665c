"""Mutated photos and the checks each must pass: shared by the fuzz tests (driven by
Hypothesis) and ``benchmarks/fuzz_photos.py`` (a long seeded run that prints the counts).

A case is one seed file (a real camera JPEG and TIFF; PNG, WebP and HEIC carrying that JPEG's
EXIF), a few byte mutations aimed at its metadata (header, IFD tables, pointers, counts,
segment lengths, a duplicated EXIF block) and one action:

* ``read``: :func:`~locdiff_core.photo.gps.read_gps` returns or raises ``PhotoError``, nothing else;
* ``write``: the result is ``ok`` and every reader (ours, exiftool) finds the new position, or it
  is an error and the file is byte-identical;
* ``remove``: ``ok`` and no reader finds a position, or an error and the file is byte-identical.

Anything else is a *silent failure* (a wrong success) or a *crash* (an untyped exception).
"""

from __future__ import annotations

import io
import random
import shutil
import signal
import struct
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from exif_surgery import exiftool_latitudes, gps_tags, ifd_block
from PIL import Image

from locdiff_core.photo import exiftool as et
from locdiff_core.photo.errors import PhotoError
from locdiff_core.photo.gps import read_gps
from locdiff_core.photo.reading import heif_available
from locdiff_core.photo.writing import (
    BackupMode,
    WriteConfig,
    WriteMethod,
    WriterBackend,
    remove_gps,
    write_gps,
)

NEW = (-33.8567891, 151.2153457)
ACTIONS = ("read", "write", "remove")
CASE_TIMEOUT_S = 20


@dataclass(frozen=True)
class Seed:
    name: str  # file name, with the extension the format uses
    data: bytes
    regions: tuple[tuple[int, int], ...]  # where mutations land: the metadata's bytes


def _find_tiff(data: bytes, start: int = 0) -> int:
    hits = [i for i in (data.find(b"II*\0", start), data.find(b"MM\0*", start)) if i >= 0]
    if not hits:
        raise ValueError("no TIFF structure in the seed")
    return min(hits)


def _tiff_regions(data: bytes, base: int) -> list[tuple[int, int]]:
    """Header, IFD0 and GPS IFD tables (with their values' first bytes) of the TIFF at ``base``."""
    bo = "<" if data[base : base + 2] == b"II" else ">"
    (ifd0,) = struct.unpack_from(bo + "I", data, base + 4)
    regions = [(base, base + 8)]
    (n,) = struct.unpack_from(bo + "H", data, base + ifd0)
    regions.append((base + ifd0, base + ifd0 + 2 + 12 * n + 4))
    for i in range(n):
        tag, _t, _c, field = struct.unpack_from(bo + "HHII", data, base + ifd0 + 2 + 12 * i)
        if tag == 0x8825:
            (m,) = struct.unpack_from(bo + "H", data, base + field)
            regions.append((base + field, base + field + 2 + 12 * m + 4 + 64))
    return [(a, min(b, len(data))) for a, b in regions]


def _jpeg_exif(jpeg: bytes) -> bytes:
    start = jpeg.find(b"Exif\0\0") + 6
    (length,) = struct.unpack_from(">H", jpeg, start - 8)
    return jpeg[start : start - 8 + length]


def seeds(samples: Path) -> list[Seed]:
    """The seed files: real JPEG and TIFF samples with GPS, and PNG, WebP and HEIC files (HEIC
    when pillow-heif is installed) carrying the JPEG's EXIF."""
    jpeg = (samples / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()
    exif = _jpeg_exif(jpeg)
    out = []
    app1 = jpeg.find(b"Exif\0\0") - 4
    jpeg_regions = [(app1, app1 + 4), *_tiff_regions(jpeg, app1 + 10)]
    out.append(Seed("camera.jpg", jpeg, tuple(jpeg_regions)))
    tiff = (samples / "tiff" / "Arbitro.tiff").read_bytes()
    tiff = _tiff_with_gps(tiff)
    out.append(Seed("scan.tiff", tiff, tuple(_tiff_regions(tiff, 0))))
    picture = Image.new("RGB", (32, 24), (40, 90, 160))
    for fmt, name, kwargs in (
        ("PNG", "drawing.png", {}),
        ("WEBP", "web.webp", {"lossless": True}),
    ):
        buffer = io.BytesIO()
        picture.save(buffer, fmt, exif=b"Exif\0\0" + exif, **kwargs)
        data = buffer.getvalue()
        base = _find_tiff(data)
        out.append(Seed(name, data, (*_tiff_regions(data, base), (base - 8, base))))
    if heif_available():
        import pillow_heif

        pillow_heif.register_heif_opener()
        buffer = io.BytesIO()
        picture.save(buffer, "HEIF", exif=b"Exif\0\0" + exif, quality=50)
        data = buffer.getvalue()
        base = _find_tiff(data)
        out.append(Seed("phone.heic", data, tuple(_tiff_regions(data, base))))
    return out


def _tiff_with_gps(tiff: bytes) -> bytes:
    """A real TIFF scan given a GPS IFD: the IFD is appended and IFD0's last entry (a tag
    below GPSInfo) becomes the pointer, so the seed has a position to change."""
    bo = "<" if tiff[:2] == b"II" else ">"
    (ifd0,) = struct.unpack_from(bo + "I", tiff, 4)
    (n,) = struct.unpack_from(bo + "H", tiff, ifd0)
    base = len(tiff) + len(tiff) % 2
    block = ifd_block(bo, gps_tags(bo, 43.4674483, 11.8851267), base)
    last = ifd0 + 2 + 12 * (n - 1)
    (last_tag,) = struct.unpack_from(bo + "H", tiff, last)
    assert last_tag < 0x8825
    pointer = struct.pack(bo + "HHII", 0x8825, 4, 1, base)
    out = tiff[:last] + pointer + tiff[last + 12 :]
    return out + b"\0" * (len(tiff) % 2) + block


_SPECIAL_16 = (0, 1, 2, 3, 4, 5, 0x7FFF, 0xFFFF)
_SPECIAL_32 = (0, 1, 4, 8, 0x7FFFFFFF, 0xFFFFFFFF)


def mutate(seed: Seed, rng: random.Random) -> bytes:
    """``seed`` with one to four mutations drawn from ``rng``."""
    data = bytearray(seed.data)
    for _ in range(rng.randint(1, 4)):
        start, end = rng.choice(seed.regions)
        at = min(rng.randrange(start, max(start + 1, end)), len(data) - 1)
        kind = rng.randrange(7)
        if kind == 0:
            data[at] = rng.randrange(256)
        elif kind == 1:
            value = rng.choice(_SPECIAL_16) if rng.random() < 0.6 else rng.randrange(65536)
            data[at : at + 2] = value.to_bytes(2, rng.choice(("little", "big")))
        elif kind == 2:
            value = rng.choice((*_SPECIAL_32, len(data), len(data) - at, at))
            data[at : at + 4] = (value % 2**32).to_bytes(4, rng.choice(("little", "big")))
        elif kind == 3:  # a run of zeros or 0xFF
            data[at : at + rng.randint(1, 16)] = bytes([rng.choice((0, 255))]) * rng.randint(1, 16)
        elif kind == 4:  # a copy of another stretch of the metadata
            src_start, src_end = rng.choice(seed.regions)
            src = rng.randrange(src_start, max(src_start + 1, src_end))
            data[at : at + 12] = data[src : src + 12]
        elif kind == 5 and seed.name.endswith(".jpg"):  # a second EXIF segment
            app1 = seed.regions[0][0]
            (length,) = struct.unpack_from(">H", seed.data, app1 + 2)
            data[app1:app1] = seed.data[app1 : app1 + 2 + length]
        elif kind == 6 and rng.random() < 0.2:  # truncated
            del data[max(at, 16) :]
    return bytes(data)


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok", "refused", "unchanged", "silent", "crash", "hang"
    detail: str = ""

    @property
    def bad(self) -> bool:
        return self.kind in ("silent", "crash", "hang")


class _HangError(Exception):
    pass


@contextmanager
def _time_limit(seconds: int):
    def fire(_signum, _frame):
        raise _HangError

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _exiftool_latitudes(path: Path) -> dict[str, object] | None:
    """Every latitude exiftool shows in ``path``; ``None`` without exiftool."""
    return None if et.exiftool_path() is None else exiftool_latitudes(path)


def _position_problem(path: Path) -> str | None:
    fix = read_gps(path)
    if fix is None or abs(fix.lat - NEW[0]) > 1e-7 or abs(fix.lon - NEW[1]) > 1e-7:
        return f"our reader finds {fix} after a successful write"
    latitudes = _exiftool_latitudes(path)
    if latitudes is None:
        return None
    if not latitudes:
        return "exiftool finds no position after a successful write"
    for key, value in latitudes.items():
        want = abs(NEW[0]) if key.startswith("GPS:") else NEW[0]
        if not isinstance(value, (int, float)) or abs(value - want) > 1e-7:
            return f"exiftool finds {key} = {value} after a successful write"
    return None


def _removal_problem(path: Path) -> str | None:
    try:
        fix = read_gps(path)
    except PhotoError:
        fix = None  # damage left in other tags; no position is shown
    if fix is not None:
        return f"our reader finds {fix} after a successful remove"
    latitudes = _exiftool_latitudes(path)
    if latitudes:
        return f"exiftool finds {latitudes} after a successful remove"
    return None


def _config(folder: Path, backend: WriterBackend) -> WriteConfig:
    return WriteConfig(backend=backend, backup=BackupMode.NONE, journal_dir=folder / "state")


def run_case(
    seed: Seed,
    data: bytes,
    action: str,
    folder: Path,
    backend: WriterBackend = WriterBackend.AUTO,
) -> Outcome:
    """Write ``data`` into ``folder`` under the seed's name and check ``action`` on it."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    path = folder / seed.name
    path.write_bytes(data)
    try:
        with _time_limit(CASE_TIMEOUT_S):
            return _check(path, data, action, _config(folder, backend))
    except _HangError:
        return Outcome("hang", f"{action} took over {CASE_TIMEOUT_S} s")
    except Exception as exc:  # the checks themselves: any escape is a crash of the code under test
        return Outcome("crash", f"{type(exc).__name__}: {exc}")


def _check(path: Path, data: bytes, action: str, config: WriteConfig) -> Outcome:
    if action == "read":
        try:
            read_gps(path)
        except PhotoError as exc:
            return Outcome("refused", exc.kind.value)
        return Outcome("ok")
    run: Callable = (
        (lambda p: write_gps(p, *NEW, config=config))
        if action == "write"
        else (lambda p: remove_gps(p, config=config))
    )
    [result] = run([path])
    if not result.ok:
        if path.read_bytes() != data:
            return Outcome("silent", f"{action} failed ({result.error}) yet changed the file")
        return Outcome("refused", result.error.kind.value)
    if result.value.method is WriteMethod.SIDECAR:  # HEIC without exiftool: GPS beside it
        fix = read_gps(path)
        if fix is None or abs(fix.lat - NEW[0]) > 1e-7 or abs(fix.lon - NEW[1]) > 1e-7:
            return Outcome("silent", f"the sidecar gives {fix} after a successful write")
        return Outcome("ok", result.value.method.value)
    if path.read_bytes() == data:
        if action == "write":
            return Outcome("silent", "write said ok but the file is unchanged")
        problem = _removal_problem(path)
        return Outcome("silent", problem) if problem else Outcome("unchanged")
    problem = _position_problem(path) if action == "write" else _removal_problem(path)
    return Outcome("silent", problem) if problem else Outcome("ok", result.value.method.value)
