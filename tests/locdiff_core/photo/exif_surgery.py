"""Building and damaging EXIF structures byte by byte, for the writer's regression and fuzz
tests: a small TIFF assembler, the IFD0 table of a real file, and JPEG/WebP segment splicing.
Independent of :mod:`locdiff_core.photo.tiff_gps` on purpose: the tests must not trust the
code they check."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from locdiff_core.photo.exiftool import shared

BYTE, ASCII, SHORT, LONG, RATIONAL = 1, 2, 3, 4, 5
SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
GPS_INFO, EXIF_OFFSET = 0x8825, 0x8769


@dataclass(frozen=True)
class Tag:
    """One entry: ``value`` is its bytes, or the name of the IFD it points at (a LONG)."""

    tag: int
    type: int
    count: int
    value: bytes | str


def ascii_tag(tag: int, text: str) -> Tag:
    raw = text.encode() + b"\0"
    return Tag(tag, ASCII, len(raw), raw)


def dms(bo: str, degrees: float) -> bytes:
    micro = round(abs(degrees) * 3_600_000_000)
    d, rest = divmod(micro, 3_600_000_000)
    m, s = divmod(rest, 60_000_000)
    return struct.pack(bo + "6I", d, 1, m, 1, s, 1_000_000)


def gps_tags(bo: str, lat: float, lon: float) -> list[Tag]:
    return [
        Tag(0, BYTE, 4, bytes([2, 3, 0, 0])),
        Tag(1, ASCII, 2, (b"N" if lat >= 0 else b"S") + b"\0"),
        Tag(2, RATIONAL, 3, dms(bo, lat)),
        Tag(3, ASCII, 2, (b"E" if lon >= 0 else b"W") + b"\0"),
        Tag(4, RATIONAL, 3, dms(bo, lon)),
    ]


def camera_tags() -> list[Tag]:
    """IFD0 tags whose loss a test can see."""
    return [
        ascii_tag(0x010F, "NIKON"),
        ascii_tag(0x0110, "E950"),
        ascii_tag(0x0132, "2001:04:06 11:51:40"),
    ]


def assemble(bo: str, ifds: dict[str, list[Tag]], first: str = "ifd0") -> bytes:
    """A TIFF structure holding ``ifds`` one after another (``first`` is IFD0); pointer
    values name another IFD. Entries are written in the order given (tests may unsort them)."""
    order = [first, *(name for name in ifds if name != first)]
    offsets, cursor = {}, 8
    for name in order:
        offsets[name] = cursor
        cursor += 2 + 12 * len(ifds[name]) + 4
        for t in ifds[name]:
            if isinstance(t.value, bytes) and len(t.value) > 4:
                cursor += len(t.value) + len(t.value) % 2
    out = bytearray((b"II*\0" if bo == "<" else b"MM\0*") + struct.pack(bo + "I", offsets[first]))
    for name in order:
        out += ifd_block(bo, ifds[name], offsets[name], offsets)
    return bytes(out)


def ifd_block(bo: str, tags: list[Tag], at: int, offsets: dict[str, int] | None = None) -> bytes:
    """One IFD's table and then its values, for a structure that places it at offset ``at``;
    a pointer entry's value is the offset ``offsets`` gives the IFD it names."""
    values_at = at + 2 + 12 * len(tags) + 4
    table, values = bytearray(struct.pack(bo + "H", len(tags))), bytearray()
    for t in tags:
        if isinstance(t.value, str):
            field = struct.pack(bo + "I", (offsets or {})[t.value])
        elif len(t.value) > 4:
            field = struct.pack(bo + "I", values_at + len(values))
            values += t.value + b"\0" * (len(t.value) % 2)
        else:
            field = t.value.ljust(4, b"\0")
        table += struct.pack(bo + "HHI", t.tag, t.type, t.count) + field
    table += struct.pack(bo + "I", 0)
    return bytes(table + values)


@dataclass(frozen=True)
class Row:
    """An IFD entry of a real structure: where it is and what it says."""

    at: int
    tag: int
    type: int
    count: int
    field: int  # the value field read as a LONG (the pointer, for pointer tags)


def byte_order(tiff: bytes) -> str:
    return "<" if tiff[:2] == b"II" else ">"


def ifd_rows(tiff: bytes, offset: int | None = None) -> list[Row]:
    """The entries of the IFD at ``offset`` (default IFD0)."""
    bo = byte_order(tiff)
    if offset is None:
        (offset,) = struct.unpack_from(bo + "I", tiff, 4)
    (n,) = struct.unpack_from(bo + "H", tiff, offset)
    rows = []
    for i in range(n):
        at = offset + 2 + 12 * i
        tag, typ, count, field = struct.unpack_from(bo + "HHII", tiff, at)
        rows.append(Row(at, tag, typ, count, field))
    return rows


def row(tiff: bytes, tag: int, offset: int | None = None) -> Row:
    return next(r for r in ifd_rows(tiff, offset) if r.tag == tag)


def patched(data: bytes, at: int, raw: bytes) -> bytes:
    return data[:at] + raw + data[at + len(raw) :]


# JPEG --------------------------------------------------------------------------------------


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of each marker segment before the scan."""
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        (length,) = struct.unpack_from(">H", data, i + 2)
        out.append((marker, i, i + 2 + length))
        if marker == 0xDA:
            break
        i += 2 + length
    return out


def exif_span(jpeg: bytes) -> tuple[int, int]:
    """Where the first EXIF APP1's TIFF structure lies in ``jpeg``."""
    for marker, start, end in jpeg_segments(jpeg):
        if marker == 0xE1 and jpeg[start + 4 : start + 10] == b"Exif\0\0":
            return start + 10, end
    raise AssertionError("no EXIF APP1")


def app1(prefix: bytes, payload: bytes) -> bytes:
    return b"\xff\xe1" + struct.pack(">H", len(prefix) + len(payload) + 2) + prefix + payload


def with_exif_blocks(jpeg: bytes, *tiffs: bytes, xmp: bytes | None = None) -> bytes:
    """``jpeg`` with its EXIF and XMP APP1 segments replaced by ``tiffs`` (and ``xmp``)."""
    kept = [
        (m, s, e)
        for m, s, e in jpeg_segments(jpeg)
        if not (m == 0xE1 and jpeg[s + 4 : s + 10] in (b"Exif\0\0", b"http:/"))
    ]
    app0 = b"".join(jpeg[s:e] for m, s, e in kept if m == 0xE0)
    head = b"\xff\xd8" + app0 + b"".join(app1(b"Exif\0\0", t) for t in tiffs)
    if xmp is not None:
        head += app1(b"http://ns.adobe.com/xap/1.0/\0", xmp)
    body = b"".join(jpeg[s:e] for m, s, e in kept if m != 0xE0)
    scan_start = kept[-1][2]
    return head + body + jpeg[scan_start:]


def replace_exif(jpeg: bytes, tiff: bytes) -> bytes:
    start, end = exif_span(jpeg)
    seg_start = start - 10
    return jpeg[:seg_start] + app1(b"Exif\0\0", tiff) + jpeg[end:]


# WebP --------------------------------------------------------------------------------------


def riff_chunk(fourcc: bytes, body: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)


def webp_with_exif_chunks(webp: bytes, *tiffs: bytes) -> bytes:
    """An extended WebP (``VP8X`` with the EXIF flag) holding one EXIF chunk per structure."""
    chunks, i = [], 12
    while i + 8 <= len(webp):
        fourcc, size = webp[i : i + 4], struct.unpack_from("<I", webp, i + 4)[0]
        chunks.append((fourcc, webp[i + 8 : i + 8 + size]))
        i += 8 + size + size % 2
    assert chunks[0][0] == b"VP8X", "start from an extended WebP"
    flags = bytes([chunks[0][1][0] | 0x08]) + chunks[0][1][1:]
    body = riff_chunk(b"VP8X", flags) + b"".join(
        riff_chunk(f, b) for f, b in chunks[1:] if f != b"EXIF"
    )
    body += b"".join(riff_chunk(b"EXIF", t) for t in tiffs)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


# exiftool as the independent reader ----------------------------------------------------------


def exiftool_doc(path: Path) -> dict:
    """exiftool's tags of ``path``, every copy, ``Group:CopyN:Tag``, numbers."""
    return json.loads(shared().execute("-j", "-a", "-G1:4", "-n", str(path)))[0]


def exiftool_latitudes(path: Path) -> dict[str, float]:
    """Every latitude exiftool shows (GPS copies unsigned, XMP and Composite signed)."""
    return {k: v for k, v in exiftool_doc(path).items() if k.endswith(":GPSLatitude")}


def exiftool_camera(path: Path) -> dict[str, object]:
    """exiftool's view of the camera tags (any group)."""
    doc = exiftool_doc(path)
    return {
        k.split(":")[-1]: v
        for k, v in doc.items()
        if k.split(":")[-1] in ("Make", "Model", "ModifyDate", "DateTimeOriginal")
    }
