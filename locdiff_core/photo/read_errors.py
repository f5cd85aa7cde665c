"""What the libraries raise for a file that cannot be read, as messages for the person.

Pillow, pillow-heif, exifread and the operating system each report a broken file in their own
words ("Truncated File Read", "cannot identify image file", "broken data stream when reading
image file", ``UnicodeDecodeError``); :func:`explain` turns any of them into a
:class:`~locdiff_core.photo.errors.PhotoError` whose message says, in plain English, what is
wrong with the file and what to do about it. A file Pillow cannot identify is described from
its first bytes (:func:`unidentified`): empty, only zero bytes, text, a web page, a PDF, a
video, a camera raw file, a HEIC without pillow-heif, or a known image format whose header is
damaged (the format's own reader is asked why). An error none of the rules knows keeps the
library's text, after a plain sentence and the exception's type. The original exception is the
message's ``__cause__`` and is logged at debug level.
"""

from __future__ import annotations

import codecs
import logging
import re
import struct
import warnings
import zlib
from pathlib import Path

from PIL import Image

from locdiff_core.photo.errors import PhotoError, PhotoErrorKind, os_error

log = logging.getLogger(__name__)

_CUT_SHORT = "the file is cut short (truncated)"
_CUT_SHORT_HINT = "it may still be copying, or the card was removed too early"
TRUNCATED = f"{_CUT_SHORT}; {_CUT_SHORT_HINT}"
DAMAGED = (
    "the image data is damaged and cannot be decoded; "
    "copy the file again from the camera or a backup"
)
CHECKSUM = (
    "the file is damaged (a checksum inside it does not match); "
    "copy the file again from the camera or a backup"
)
EMPTY = "the file is empty (0 bytes)"
ZEROS = (
    "the file holds only zero bytes, no picture: the copy failed; "
    "copy it again from the camera or a backup"
)
HEIF_MISSING = "HEIC support is missing: pip install pillow-heif"
NO_MEMORY = "there is not enough memory to decode it; close other programs and try again"
EXIF_DAMAGED = "its EXIF metadata is damaged, so {what} cannot be read"

_TRUNCATED_TEXT = re.compile(
    r"truncat|unexpected end of file|insufficient input data|cannot read full|"
    r"buffer is not large enough|end of data|not enough data|unpack requires a buffer",
    re.IGNORECASE,
)
_DAMAGED_TEXT = re.compile(
    r"broken data stream|decoder error|decoding error|buffer overrun|cannot load this image|"
    r"could not create decoder|invalid input|corrupt|bad|broken",
    re.IGNORECASE,
)
# What a parser raises on a damaged EXIF block ("not a TIFF file", a bad offset, a text tag
# that is no ASCII): the block is damaged, and the library's words add nothing for the person.
_EXIF_PARSE_ERRORS = (SyntaxError, UnicodeDecodeError, IndexError, KeyError, struct.error)
_CHECKSUM_TEXT = re.compile(r"checksum|\bcrc\b", re.IGNORECASE)
_BOMB_TEXT = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+) pixels")

_VIDEO_BRANDS = {b"isom", b"iso2", b"mp41", b"mp42", b"M4V ", b"qt  ", b"3gp4", b"3gp5", b"avc1"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif"}
_RAW = (
    (b"FUJIFILMCCD-RAW", "a Fujifilm RAF"),
    (b"IIRO", "an Olympus ORF"),
    (b"IIRS", "an Olympus ORF"),
    (b"IIU\0", "a Panasonic RW2"),
)


def explain(path: Path | str, exc: BaseException, doing: str = "reading it") -> PhotoError:
    """``exc``, raised by a library (or the OS) while ``doing`` something to the photo at
    ``path``, as a :class:`PhotoError` with a plain message; ``exc`` is its ``__cause__``."""
    path = Path(path)
    if isinstance(exc, PhotoError):
        return exc
    error = _translate(path, exc, doing)
    error.__cause__ = exc
    log.debug("%s: %s (%s: %s)", path, error.message, type(exc).__name__, exc)
    return error


def _translate(path: Path, exc: BaseException, doing: str) -> PhotoError:
    if isinstance(exc, Image.DecompressionBombError):
        return PhotoError(PhotoErrorKind.TOO_LARGE, path, _bomb_text(exc))
    if isinstance(exc, Image.UnidentifiedImageError):
        return unidentified(path)
    if isinstance(exc, OSError) and exc.errno is not None:
        return os_error(path, exc, doing, kind=PhotoErrorKind.UNREADABLE)
    if isinstance(exc, MemoryError):
        return PhotoError(PhotoErrorKind.TOO_LARGE, path, NO_MEMORY)
    return PhotoError(PhotoErrorKind.CORRUPT, path, damage_text(exc))


def damage_text(exc: BaseException, library: str = "Pillow") -> str:
    """What a decoder's exception says about the file: cut short, a bad checksum, damaged
    data, or (unknown) the library's own words after a plain sentence."""
    text = str(exc)
    if isinstance(exc, (EOFError, struct.error)) or _TRUNCATED_TEXT.search(text):
        return TRUNCATED
    if _CHECKSUM_TEXT.search(text):
        return CHECKSUM
    if isinstance(exc, zlib.error) or _DAMAGED_TEXT.search(text):
        return DAMAGED
    return (
        f"the photo could not be decoded: {library} stopped with an error it did not explain "
        f"({type(exc).__name__}: {text or 'no message'})"
    )


def exif_damaged(path: Path | str, exc: BaseException, what: str) -> PhotoError:
    """A parser's exception on the photo's EXIF block, as a :class:`PhotoError` saying that
    ``what`` ("its GPS position", "its orientation") cannot be read."""
    path = Path(path)
    if isinstance(exc, PhotoError | MemoryError) or (
        isinstance(exc, OSError) and exc.errno is not None
    ):
        return explain(path, exc, f"reading {what}")
    message = EXIF_DAMAGED.format(what=what)
    if _TRUNCATED_TEXT.search(str(exc)) or isinstance(exc, EOFError):
        message = f"{_CUT_SHORT}, so {what} cannot be read; {_CUT_SHORT_HINT}"
    elif not isinstance(exc, _EXIF_PARSE_ERRORS):
        message += f" ({type(exc).__name__}: {exc})" if str(exc) else f" ({type(exc).__name__})"
    error = PhotoError(PhotoErrorKind.CORRUPT, path, message)
    error.__cause__ = exc
    log.debug("%s: %s (%s: %s)", path, message, type(exc).__name__, exc)
    return error


def _bomb_text(exc: BaseException) -> str:
    found = _BOMB_TEXT.search(str(exc))
    size = f" ({int(found[1]):,} pixels, over the limit of {int(found[2]):,})" if found else ""
    return (
        f"the image is too large to decode safely{size}; it may be damaged, or made to exhaust "
        "the memory of whoever opens it"
    )


def unidentified(path: Path | str) -> PhotoError:
    """Why Pillow finds no image in the file at ``path``, told from its first bytes."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        return explain(path, exc, "opening it")
    kind, message = _describe(path, head)
    return PhotoError(kind, path, message)


def _describe(path: Path, head: bytes) -> tuple[PhotoErrorKind, str]:
    if not head:
        return PhotoErrorKind.NOT_AN_IMAGE, EMPTY
    if not head.strip(b"\0"):
        return PhotoErrorKind.NOT_AN_IMAGE, ZEROS
    fmt = _image_format(head)
    if fmt == "HEIF" and "HEIF" not in Image.OPEN:
        return PhotoErrorKind.UNSUPPORTED, HEIF_MISSING
    if fmt is not None:
        return _damaged_header(path, fmt)
    other = describe_content(head)
    if other is not None:
        return PhotoErrorKind.NOT_AN_IMAGE, f"not an image Pillow can read ({other})"
    return (
        PhotoErrorKind.NOT_AN_IMAGE,
        "not an image Pillow can read (the start of the file is no JPEG, PNG, TIFF, WebP or "
        "HEIC header); the file may be damaged or have the wrong extension",
    )


def _image_format(head: bytes) -> str | None:
    """Pillow's name of the image format whose signature starts ``head``."""
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


_FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "TIFF": "TIFF", "WEBP": "WebP", "HEIF": "HEIC"}


def _damaged_header(path: Path, fmt: str) -> tuple[PhotoErrorKind, str]:
    """A file that starts like ``fmt`` yet Pillow cannot open: its reader says why."""
    name = _FORMAT_NAMES.get(fmt, fmt)
    Image.init()
    factory = Image.OPEN.get(fmt, (None,))[0]
    try:
        if factory is not None:
            with open(path, "rb") as f, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its complaints come back as the exception
                factory(f, str(path)).close()
    except Exception as exc:  # what Image.open swallowed
        log.debug("%s: the %s reader says %s: %s", path, name, type(exc).__name__, exc)
        text = damage_text(exc, "pillow-heif" if fmt == "HEIF" else "Pillow")
        if text in (TRUNCATED, CHECKSUM):
            return PhotoErrorKind.CORRUPT, text
    else:
        if fmt not in _FORMAT_NAMES:
            return (
                PhotoErrorKind.UNSUPPORTED,
                f"the file is a {name} image; photos are read from JPEG, PNG, TIFF, WebP and "
                "HEIC files",
            )
    return (
        PhotoErrorKind.CORRUPT,
        f"it starts like a {name} file, but its header is damaged; "
        "copy the file again from the camera or a backup",
    )


def describe_content(head: bytes) -> str | None:
    """What a file that is no image holds, from its first bytes ("the start of the file is
    text", "the file is a PDF document"); None when it is none of the kinds known here."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":
            return "the file is a Canon CR3 camera raw file; export a JPEG or TIFF from it first"
        if brand in _VIDEO_BRANDS:
            return "the file is a video, not a photo"
    for signature, what in _RAW:
        if head.startswith(signature):
            return f"the file is {what} camera raw file; export a JPEG or TIFF from it first"
    if head.startswith(b"%PDF"):
        return "the file is a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "the file is a zip archive; unpack it first"
    text = _as_text(head)
    if text is None:
        return None
    start = text.lstrip().lower()
    if start.startswith(("<!doctype html", "<html")):
        return "the file is a web page (HTML), perhaps saved in place of the photo"
    return "the start of the file is text"


def _as_text(head: bytes) -> str | None:
    """``head`` as text when it reads as UTF-8 (or UTF-16 with a byte-order mark) holding
    no control characters but white space; else None."""
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            head, chosen = head[len(bom) :], encoding
            break
    else:
        chosen = "utf-8"
    try:
        text = codecs.getincrementaldecoder(chosen)().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    text = text.removeprefix("\ufeff")
    if not text or any(not (c.isprintable() or c in "\t\n\r\f") for c in text):
        return None
    return text
