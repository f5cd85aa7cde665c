"""Finding and replacing the EXIF block inside JPEG, PNG, WebP and TIFF files, byte-exactly.

Each container is split into (everything before the EXIF block, the block, everything after);
only the block changes, so JPEG scan data, PNG ``IDAT`` and WebP bitstreams stay byte-identical.

* JPEG: the first ``APP1`` segment starting ``Exif\\0\\0``; a new one goes after ``SOI`` and any
  ``APP0`` (JFIF/JFXX) segments. A segment holds at most 65,533 bytes.
* PNG: the ``eXIf`` chunk (CRC recomputed); a new one goes before the first ``IDAT``.
* WebP: the ``EXIF`` chunk of the extended format; a simple (``VP8 ``/``VP8L``) file gains a
  ``VP8X`` header with the canvas size read from its bitstream.
* TIFF: the whole file is the TIFF structure.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

from locdiff_core.photo.tiff_gps import TiffError, empty_exif_block

EXIF_PREFIX = b"Exif\0\0"
MAX_JPEG_SEGMENT = 65535 - 2


class Container(enum.Enum):
    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WebP"
    TIFF = "TIFF"


def sniff(head: bytes) -> Container | None:
    """The container of a file from its first 16 bytes, ``None`` when not one of ours."""
    if head[:3] == b"\xff\xd8\xff":
        return Container.JPEG
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return Container.PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Container.WEBP
    if head[:4] in (b"II*\0", b"MM\0*"):
        return Container.TIFF
    return None


EditFn = Callable[[bytes], bytes | None]  # old TIFF block -> new block, None when unchanged


def rewrite_exif(data: bytes, container: Container, edit: EditFn) -> bytes | None:
    """``data`` with its EXIF block replaced by ``edit(block)``; a file without EXIF is given an
    empty block first. ``None`` when ``edit`` changed nothing. Raises :class:`TiffError` when the
    container is malformed."""
    if container is Container.TIFF:
        return edit(data)
    if container is Container.JPEG:
        return _rewrite_jpeg(data, edit)
    if container is Container.PNG:
        return _rewrite_png(data, edit)
    return _rewrite_webp(data, edit)


# -- JPEG ------------------------------------------------------------------------------------

_NO_LENGTH = {0xD8, 0x01, *range(0xD0, 0xD8)}


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of each segment before the first ``SOS``; ``SOS`` is the last
    one listed, with ``end`` the end of the file (the scan data and ``EOI``)."""
    if data[:2] != b"\xff\xd8":
        raise TiffError("not a JPEG: no SOI marker")
    segments, pos = [(0xD8, 0, 2)], 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise TiffError(f"JPEG structure broken at byte {pos}: expected a marker")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        start = pos - 1
        if marker in _NO_LENGTH:
            segments.append((marker, start, pos + 1))
            pos += 1
            continue
        if marker == 0xD9:
            raise TiffError("JPEG ends (EOI) before any image data (SOS)")
        if pos + 3 > len(data):
            raise TiffError("JPEG is truncated inside a segment header")
        (length,) = struct.unpack_from(">H", data, pos + 1)
        if marker == 0xDA:
            segments.append((marker, start, len(data)))
            return segments
        end = pos + 1 + length
        if length < 2 or end > len(data):
            raise TiffError(f"JPEG segment 0xFF{marker:02X} at byte {start} runs past the end")
        segments.append((marker, start, end))
        pos = end
    raise TiffError("JPEG has no image data (no SOS marker); the file is truncated")


def read_jpeg_exif(f: BinaryIO) -> bytes | None:
    """The TIFF block of a JPEG's first ``Exif`` APP1 segment, reading only segment headers.

    Unlike a reader that stops at the first APP1, this finds EXIF after an XMP segment too.
    ``None`` when there is none or the structure breaks before one is found.
    """
    f.seek(0)
    if f.read(2) != b"\xff\xd8":
        return None
    while True:
        head = f.read(2)
        while head[:1] == b"\xff" and head[1:2] == b"\xff":  # fill bytes
            head = head[1:] + f.read(1)
        if len(head) < 2 or head[0] != 0xFF:
            return None
        marker = head[1]
        if marker in _NO_LENGTH:
            continue
        if marker in (0xDA, 0xD9):
            return None
        raw = f.read(2)
        if len(raw) < 2 or struct.unpack(">H", raw)[0] < 2:
            return None
        length = struct.unpack(">H", raw)[0] - 2
        if marker == 0xE1 and length >= 6:
            payload = f.read(length)
            if payload.startswith(EXIF_PREFIX):
                return payload[6:]
        else:
            f.seek(length, 1)


def jpeg_scan(data: bytes) -> bytes:
    """The compressed image data of a JPEG: from its first ``SOS`` marker to the end."""
    return data[jpeg_segments(data)[-1][1] :]


def _rewrite_jpeg(data: bytes, edit: EditFn) -> bytes | None:
    segments = jpeg_segments(data)
    found = next(
        ((s, e) for m, s, e in segments if m == 0xE1 and data[s + 4 : s + 10] == EXIF_PREFIX),
        None,
    )
    if found is not None:
        start, end = found
        block = edit(data[start + 10 : end])
    else:
        start = 2  # after SOI and the APP0 (JFIF) segments that must lead the file
        for marker, _s, seg_end in segments[1:]:
            if marker != 0xE0:
                break
            start = seg_end
        end = start
        block = edit(empty_exif_block())
    if block is None:
        return None
    payload = EXIF_PREFIX + block
    if len(payload) > MAX_JPEG_SEGMENT:
        raise TiffError(
            f"the EXIF block would grow to {len(payload):,} bytes, more than a JPEG APP1 "
            "segment holds (65,533); install exiftool to write this file"
        )
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:start] + segment + data[end:]


# -- PNG -------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """``(type, start, end)`` of every chunk (``end`` past the CRC)."""
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise TiffError(f"PNG chunk {ctype!r} at byte {pos} runs past the end")
        chunks.append((ctype, pos, end))
        pos = end
        if ctype == b"IEND":
            break
    if not any(c[0] == b"IDAT" for c in chunks):
        raise TiffError("PNG has no image data (IDAT); the file is truncated")
    return chunks


def _rewrite_png(data: bytes, edit: EditFn) -> bytes | None:
    chunks = _png_chunks(data)
    found = next(((s, e) for t, s, e in chunks if t == b"eXIf"), None)
    if found is not None:
        start, end = found
        old = data[start + 8 : end - 4]
        block = edit(old[6:] if old.startswith(EXIF_PREFIX) else old)
    else:
        start = end = next(s for t, s, _e in chunks if t == b"IDAT")
        block = edit(empty_exif_block())
    if block is None:
        return None
    chunk = struct.pack(">I", len(block)) + b"eXIf" + block
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + block) & 0xFFFFFFFF)
    return data[:start] + chunk + data[end:]


# -- WebP ------------------------------------------------------------------------------------


def _riff_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """``(fourcc, start, end)`` of every top-level chunk (``end`` past the padding byte)."""
    chunks, pos = [], 12
    limit = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    while pos + 8 <= limit:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        end = pos + 8 + size + (size % 2)
        if pos + 8 + size > len(data):
            raise TiffError(f"WebP chunk {fourcc!r} at byte {pos} runs past the end")
        chunks.append((fourcc, pos, min(end, len(data))))
        pos = end
    if not chunks:
        raise TiffError("WebP file has no chunks")
    return chunks


def read_webp_exif(f: BinaryIO) -> bytes | None:
    """The TIFF block of a WebP file's ``EXIF`` chunk (with or without the ``Exif\\0\\0``
    prefix some writers add), seeking from chunk header to chunk header."""
    f.seek(0)
    head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        fourcc, size = struct.unpack("<4sI", chunk)
        if fourcc == b"EXIF":
            block = f.read(size)
            return block[6:] if block.startswith(EXIF_PREFIX) else block
        f.seek(size + size % 2, 1)


def _canvas_size(data: bytes, chunks: list[tuple[bytes, int, int]]) -> tuple[int, int, bool]:
    fourcc, start, _end = chunks[0]
    body = data[start + 8 : start + 8 + 10]
    if fourcc == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if fourcc == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", body, 6)
        return w & 0x3FFF, h & 0x3FFF, False
    raise TiffError(f"WebP image chunk {fourcc!r} is not VP8 or VP8L; cannot add EXIF")


def _rewrite_webp(data: bytes, edit: EditFn) -> bytes | None:
    chunks = _riff_chunks(data)
    found = next(((s, e) for t, s, e in chunks if t == b"EXIF"), None)
    if found is not None:
        start, end = found
        size = struct.unpack_from("<I", data, start + 4)[0]
        old = data[start + 8 : start + 8 + size]
        prefix = EXIF_PREFIX if old.startswith(EXIF_PREFIX) else b""  # keep the file's habit
        block = edit(old[len(prefix) :])
        block = None if block is None else prefix + block
    else:
        xmp_at = next((s for t, s, _e in chunks if t == b"XMP "), chunks[-1][2])
        start = end = xmp_at  # EXIF goes after the image data and before XMP
        block = edit(empty_exif_block())
    if block is None:
        return None
    chunk = b"EXIF" + struct.pack("<I", len(block)) + block + b"\0" * (len(block) % 2)
    body = data[12:start] + chunk + data[end:]
    if chunks[0][0] == b"VP8X":
        flags = body[8] | 0x08  # the EXIF flag
        body = body[:8] + bytes([flags]) + body[9:]
    else:
        w, h, alpha = _canvas_size(data, chunks)
        vp8x = bytes([0x08 | (0x10 if alpha else 0)]) + b"\0\0\0"  # flags, 3 reserved
        vp8x += (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        body = b"VP8X" + struct.pack("<I", 10) + vp8x + body
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
