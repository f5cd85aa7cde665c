"""Finding and replacing the EXIF and XMP blocks of JPEG, PNG, WebP and TIFF files, byte-exactly.

Each container is split into its segments or chunks; only the metadata blocks change, so JPEG
scan data, PNG ``IDAT`` and WebP bitstreams stay byte-identical. A file may hold more than one
EXIF block (a second ``APP1``, a second WebP ``EXIF`` chunk): readers differ in which one they
show, so the first (the *primary*) gets ``edit`` and every later one gets ``others`` (the GPS
removal), and no reader is left with an older position.

* JPEG: ``APP1`` segments starting ``Exif\\0\\0`` (EXIF) or ``http://ns.adobe.com/xap/1.0/\\0``
  (XMP); a new EXIF segment goes after ``SOI`` and any ``APP0`` (JFIF/JFXX) segments. A segment
  holds at most 65,533 bytes.
* PNG: ``eXIf`` chunks (CRC recomputed) and the ``iTXt`` chunk ``XML:com.adobe.xmp``; a new
  ``eXIf`` goes before the first ``IDAT``.
* WebP: the ``EXIF`` and ``XMP `` chunks of the extended format; a simple (``VP8 ``/``VP8L``)
  file gains a ``VP8X`` header with the canvas size read from its bitstream.
* TIFF: the whole file is the TIFF structure (its XMP, tag 700, is :mod:`.tiff_gps`'s).
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from locdiff_core.photo.tiff_gps import TiffError, empty_exif_block

EXIF_PREFIX = b"Exif\0\0"
XMP_JPEG_PREFIX = b"http://ns.adobe.com/xap/1.0/\0"
XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"
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


EditFn = Callable[[bytes], bytes | None]  # old block -> new block, None when unchanged


@dataclass(frozen=True)
class MetadataEdit:
    """What to do to each metadata block: ``primary`` for the first EXIF block (given an empty
    one when the file has none), ``others`` for every later EXIF block, ``xmp`` for XMP packets
    (``None``: leave that kind of block alone)."""

    primary: EditFn
    others: EditFn | None = None
    xmp: EditFn | None = None


@dataclass(frozen=True)
class Blocks:
    """The metadata blocks of a file, in file order: TIFF structures and XMP packets."""

    exif: list[bytes]
    xmp: list[bytes]


@dataclass(frozen=True)
class _Block:
    """One metadata block: ``data[start:end]`` holds ``payload``; ``wrap`` builds the bytes
    that replace that range for a new payload."""

    kind: str  # "exif" or "xmp"
    start: int
    end: int
    payload: bytes
    wrap: Callable[[bytes], bytes]


def rewrite_exif(data: bytes, container: Container, edit: EditFn | MetadataEdit) -> bytes | None:
    """``data`` with its metadata blocks replaced as ``edit`` says; a file without EXIF is given
    an empty block first. ``None`` when nothing changed. Raises :class:`TiffError` when the
    container is malformed."""
    if not isinstance(edit, MetadataEdit):
        edit = MetadataEdit(edit)
    if container is Container.TIFF:
        return edit.primary(data)
    locate, insert_at, wrap_exif, finish = _LAYOUTS[container]
    changes, primary_seen = [], False
    for block in locate(data):
        if block.kind == "exif":
            fn = edit.others if primary_seen else edit.primary
            primary_seen = True
        else:
            fn = edit.xmp
        new = fn(block.payload) if fn is not None else None
        if new is not None:
            changes.append((block.start, block.end, block.wrap(new)))
    inserted = False
    if not primary_seen:
        new = edit.primary(empty_exif_block())
        if new is not None:
            at = insert_at(data)
            changes.append((at, at, wrap_exif(new)))
            inserted = True
    if not changes:
        return None
    return finish(data, _splice(data, changes), inserted)


def metadata_blocks(data: bytes, container: Container) -> Blocks:
    """Every EXIF block and XMP packet of ``data`` in file order (a TIFF file is its own EXIF
    block; its XMP is tag 700, read by :mod:`.xmp`). Raises :class:`TiffError` when the
    container is malformed."""
    if container is Container.TIFF:
        return Blocks([data], [])
    blocks = _LAYOUTS[container][0](data)
    return Blocks(
        [b.payload for b in blocks if b.kind == "exif"],
        [b.payload for b in blocks if b.kind == "xmp"],
    )


def _splice(data: bytes, changes: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` with each ``(start, end, replacement)`` applied (sorted, not overlapping)."""
    out, pos = bytearray(), 0
    for start, end, new in sorted(changes, key=lambda c: (c[0], c[1])):
        out += data[pos:start] + new
        pos = end
    return bytes(out + data[pos:])


def _unchanged(_old: bytes, new: bytes, _inserted: bool) -> bytes:
    return new


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


def _jpeg_segment(prefix: bytes) -> Callable[[bytes], bytes]:
    def wrap(payload: bytes) -> bytes:
        body = prefix + payload
        if len(body) > MAX_JPEG_SEGMENT:
            raise TiffError(
                f"the metadata block would grow to {len(body):,} bytes, more than a JPEG APP1 "
                "segment holds (65,533); install exiftool to write this file"
            )
        return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body

    return wrap


def _jpeg_blocks(data: bytes) -> list[_Block]:
    blocks = []
    for marker, start, end in jpeg_segments(data):
        if marker != 0xE1:
            continue
        for kind, prefix in (("exif", EXIF_PREFIX), ("xmp", XMP_JPEG_PREFIX)):
            if data[start + 4 : start + 4 + len(prefix)] == prefix:
                payload = data[start + 4 + len(prefix) : end]
                blocks.append(_Block(kind, start, end, payload, _jpeg_segment(prefix)))
    return blocks


def _jpeg_insert_at(data: bytes) -> int:
    """After SOI and the APP0 (JFIF) segments that must lead the file."""
    at = 2
    for marker, _start, end in jpeg_segments(data)[1:]:
        if marker != 0xE0:
            break
        at = end
    return at


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


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(ctype + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)


def _png_xmp(body: bytes) -> tuple[bytes, Callable[[bytes], bytes]] | None:
    """The packet of an ``iTXt`` chunk body holding XMP, and how to wrap a new one (written
    uncompressed, keyword and language kept)."""
    keyword, sep, rest = body.partition(b"\0")
    if keyword != XMP_PNG_KEYWORD or not sep or len(rest) < 2:
        return None
    compressed, rest = rest[0], rest[2:]
    language, _, rest = rest.partition(b"\0")
    translated, _, text = rest.partition(b"\0")
    if compressed:
        try:
            text = zlib.decompressobj().decompress(text, 64 * 1024 * 1024)
        except zlib.error as exc:
            raise TiffError(f"the PNG XMP chunk does not decompress ({exc})") from exc
    head = keyword + b"\0\0\0" + language + b"\0" + translated + b"\0"
    return text, lambda packet: _png_chunk(b"iTXt", head + packet)


def _png_blocks(data: bytes) -> list[_Block]:
    blocks = []
    for ctype, start, end in _png_chunks(data):
        body = data[start + 8 : end - 4]
        if ctype == b"eXIf":
            payload = body[6:] if body.startswith(EXIF_PREFIX) else body
            blocks.append(_Block("exif", start, end, payload, _png_exif_chunk))
        elif ctype == b"iTXt":
            found = _png_xmp(body)
            if found is not None:
                blocks.append(_Block("xmp", start, end, found[0], found[1]))
    return blocks


def _png_exif_chunk(block: bytes) -> bytes:
    return _png_chunk(b"eXIf", block)


def _png_insert_at(data: bytes) -> int:
    return next(s for t, s, _e in _png_chunks(data) if t == b"IDAT")


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


def _riff_chunk(fourcc: bytes, prefix: bytes = b"") -> Callable[[bytes], bytes]:
    def wrap(payload: bytes) -> bytes:
        body = prefix + payload
        return fourcc + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)

    return wrap


def _webp_blocks(data: bytes) -> list[_Block]:
    blocks = []
    for fourcc, start, end in _riff_chunks(data):
        size = struct.unpack_from("<I", data, start + 4)[0]
        body = data[start + 8 : start + 8 + size]
        if fourcc == b"EXIF":
            prefix = EXIF_PREFIX if body.startswith(EXIF_PREFIX) else b""  # keep the habit
            wrap = _riff_chunk(b"EXIF", prefix)
            blocks.append(_Block("exif", start, end, body[len(prefix) :], wrap))
        elif fourcc == b"XMP ":
            blocks.append(_Block("xmp", start, end, body, _riff_chunk(b"XMP ")))
    return blocks


def _webp_insert_at(data: bytes) -> int:
    """EXIF goes after the image data and before XMP."""
    chunks = _riff_chunks(data)
    return next((s for t, s, _e in chunks if t == b"XMP "), chunks[-1][2])


def _webp_finish(old: bytes, new: bytes, inserted: bool) -> bytes:
    """The RIFF size recomputed; the ``VP8X`` EXIF flag set (a simple file gains the header)."""
    body = new[12:]
    chunks = _riff_chunks(old)
    if chunks[0][0] == b"VP8X":
        if inserted:
            body = body[:8] + bytes([body[8] | 0x08]) + body[9:]
    elif inserted:
        w, h, alpha = _canvas_size(old, chunks)
        vp8x = bytes([0x08 | (0x10 if alpha else 0)]) + b"\0\0\0"  # flags, 3 reserved
        vp8x += (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        body = b"VP8X" + struct.pack("<I", 10) + vp8x + body
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


_LAYOUTS = {
    Container.JPEG: (_jpeg_blocks, _jpeg_insert_at, _jpeg_segment(EXIF_PREFIX), _unchanged),
    Container.PNG: (_png_blocks, _png_insert_at, _png_exif_chunk, _unchanged),
    Container.WEBP: (_webp_blocks, _webp_insert_at, _riff_chunk(b"EXIF"), _webp_finish),
}
