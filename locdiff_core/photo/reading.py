"""Opening photos: JPEG, PNG, TIFF, WebP and HEIC/HEIF as upright RGB images and thumbnails.

HEIC/HEIF decoding comes from ``pillow-heif``. The EXIF orientation is applied, every mode
(palette, alpha, 16-bit, CMYK) becomes 8-bit RGB, and a decoded-size cap turns Pillow's
decompression-bomb guard into a :class:`~locdiff_core.photo.errors.PhotoError` of kind
``TOO_LARGE``. Thumbnails of JPEGs use draft mode (the decoder's DCT scaling), which decodes a
1/8-size image about ten times faster than a full decode. Only regular files are opened: a FIFO,
socket or device is refused from its ``stat`` (:func:`~locdiff_core.photo.safe_io.check_regular`),
since opening one could block forever. A file that cannot be opened or decoded raises a
:class:`~locdiff_core.photo.errors.PhotoError` in plain words
(:func:`~locdiff_core.photo.read_errors.explain`), Pillow's exception as its cause.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from locdiff_core.photo.errors import (
    CancelledFn,
    FileResult,
    PhotoError,
    PhotoErrorKind,
    ProgressFn,
    run_batch,
)
from locdiff_core.photo.read_errors import HEIF_MISSING, exif_damaged, explain
from locdiff_core.photo.safe_io import RootGuard, check_regular

PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".heic", ".heif", ".hif"}
)
_HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})
_heif_state: dict[str, bool] = {}


@dataclass(frozen=True)
class ReadConfig:
    """How photos are decoded.

    ``max_pixels`` caps width x height before anything is decoded (default: twice Pillow's
    ``MAX_IMAGE_PIXELS``, the size at which Pillow itself refuses a file, about 179 MP).
    """

    max_pixels: int = 2 * 89_478_485
    thumbnail_px: int = 256

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        if self.thumbnail_px < 1:
            raise ValueError(f"thumbnail_px must be >= 1, got {self.thumbnail_px}")


def heif_available() -> bool:
    """Whether HEIC/HEIF files can be decoded (registers ``pillow-heif`` with Pillow once)."""
    if "ok" not in _heif_state:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_state["ok"] = True
        except ImportError:
            _heif_state["ok"] = False
    return _heif_state["ok"]


def is_photo_path(path: Path | str) -> bool:
    """Whether ``path`` has the suffix of a format this module opens."""
    return Path(path).suffix.lower() in PHOTO_SUFFIXES


def _open(path: Path, config: ReadConfig) -> Image.Image:
    check_regular(path)  # a FIFO or a device would block Image.open forever
    if path.suffix.lower() in _HEIF_SUFFIXES and not heif_available():
        raise PhotoError(PhotoErrorKind.UNSUPPORTED, path, HEIF_MISSING)
    heif_available()  # HEIF content can hide behind any suffix
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Exception as exc:  # Pillow's and pillow-heif's words, made plain
        raise explain(path, exc, "opening it") from exc
    width, height = img.size
    if width * height > config.max_pixels:
        img.close()
        raise PhotoError(
            PhotoErrorKind.TOO_LARGE,
            path,
            f"{width} x {height} pixels is more than the limit of {config.max_pixels:,}; "
            "raise ReadConfig.max_pixels if you trust this file",
        )
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB; transparent pixels are laid on white, high-bit-depth images scaled to 8 bits."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    elif img.mode == "F":
        img = img.point(lambda v: v * 255).convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return img.convert("RGB")


def _decode(path: Path, img: Image.Image, draft_px: int | None) -> Image.Image:
    try:
        with img:
            if draft_px is not None and img.format == "JPEG":
                img.draft("RGB", (draft_px, draft_px))
            img.load()
            try:
                upright = ImageOps.exif_transpose(img)
            except (SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error) as exc:
                raise exif_damaged(path, exc, "its orientation") from exc
            return to_rgb(upright)
    except PhotoError:
        raise
    except Exception as exc:  # a decoder on a damaged file: Pillow's words, made plain
        raise explain(path, exc, "decoding it") from exc


def open_image(
    path: Path | str, config: ReadConfig = ReadConfig(), *, min_size: int | None = None
) -> Image.Image:
    """The photo at ``path`` decoded to an upright 8-bit RGB image (EXIF orientation applied).

    With ``min_size``, a JPEG may be decoded at a reduced DCT scale (draft mode, several times
    faster) as long as both sides stay at least ``min_size`` pixels.
    Raises :class:`PhotoError` for a missing, unreadable, damaged, unknown or too large file.
    """
    path = Path(path)
    return _decode(path, _open(path, config), draft_px=min_size)


def thumbnail(
    path: Path | str, size: int | None = None, config: ReadConfig = ReadConfig()
) -> Image.Image:
    """An upright RGB thumbnail that fits in ``size x size`` (default ``config.thumbnail_px``).

    JPEGs are decoded in draft mode at the smallest DCT scale that still covers ``size``.
    """
    path = Path(path)
    size = config.thumbnail_px if size is None else size
    if size < 1:
        raise ValueError(f"thumbnail size must be >= 1 pixel, got {size}")
    img = _decode(path, _open(path, config), draft_px=size)
    img.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return img


def thumbnails(
    paths: Iterable[Path | str],
    size: int | None = None,
    config: ReadConfig = ReadConfig(),
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[FileResult[Image.Image]]:
    """:func:`thumbnail` for every path; a bad file becomes an error result, never an exception."""
    return run_batch(
        paths, lambda p: thumbnail(p, size, config), progress=progress, cancelled=cancelled
    )


SkipFn = Callable[[Path, str], None]  # (path left out, why)


def find_photos(
    roots: Iterable[Path | str],
    *,
    allow_outside_root: bool = False,
    on_skip: SkipFn | None = None,
) -> list[Path]:
    """Photo files among ``roots`` (files are kept whatever their suffix; folders are searched
    recursively for known suffixes), sorted, XMP sidecars and hidden files left out."""
    return list(iter_photos(roots, allow_outside_root=allow_outside_root, on_skip=on_skip))


def iter_photos(
    roots: Iterable[Path | str],
    *,
    allow_outside_root: bool = False,
    on_skip: SkipFn | None = None,
) -> Iterator[Path]:
    """:func:`find_photos` as it walks: each root's photos in sorted path order, yielded as
    they are found, so a caller can show the first ones of a large tree at once.

    Symbolic links to folders are not followed (no loops); a symbolic link to a file is followed
    only when the file lies inside the folder being walked, unless ``allow_outside_root``: the
    others are left out and reported to ``on_skip``. FIFOs, sockets and devices are left out;
    a folder that cannot be listed is skipped.
    """
    for root in map(Path, roots):
        if root.is_dir():
            guard = None if allow_outside_root else RootGuard(root)
            yield from _walk_sorted(root, guard, on_skip)
        else:
            yield root


def _walk_sorted(folder: Path, guard: RootGuard | None, on_skip: SkipFn | None) -> Iterator[Path]:
    try:
        with os.scandir(folder) as scan:
            entries = [
                (e.name, e.is_dir(follow_symlinks=False), e.is_file(), e.is_symlink()) for e in scan
            ]
    except OSError:
        return
    # Paths sort by their parts (case-folded on Windows): depth-first by sorted names is exactly
    # sorted() of the full paths.
    for name, is_dir, is_file, is_link in sorted(entries, key=lambda e: Path(e[0])):
        path = folder / name
        if is_dir:
            yield from _walk_sorted(path, guard, on_skip)
        elif is_file and not name.startswith(".") and is_photo_path(path):
            if is_link and guard is not None:
                target = Path(os.path.realpath(path))
                if not guard.contains(target):
                    if on_skip is not None:
                        on_skip(path, f"is a symbolic link to {target}, outside {guard.root}")
                    continue
            yield path
