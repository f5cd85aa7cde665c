"""Editing the GPS IFD of a TIFF structure (an EXIF block, or a whole TIFF file) losslessly.

The edit never moves a byte that something else may point at. Maker notes, thumbnails and strip
data are addressed by offsets from the TIFF header, often in ways only the camera maker knows,
so instead of re-laying the structure out this module:

* appends the new GPS IFD at the end (word-aligned) and points IFD0's ``GPSInfo`` entry at it;
* when IFD0 has no ``GPSInfo`` entry, appends a copy of IFD0 with the entry added and points the
  header at the copy (entries, their out-of-line values and the next-IFD link are unchanged);
* zeroes the old GPS IFD and its values, so no stale or private position stays in the file;
* for removal, also drops the ``GPSInfo`` entry from IFD0 in place (the table shrinks by 12 bytes).

The result is a list of byte patches plus bytes to append, so a caller can apply it to an EXIF
block in memory or to a copy of a large TIFF file. EXIF 2.32 / TIFF 6.0 field layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

GPS_IFD_TAG = 0x8825
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
BYTE, ASCII, SHORT, LONG, RATIONAL = 1, 2, 3, 4, 5
# Tags this module owns: version, latitude and longitude with refs, altitude with ref.
_POSITION_TAGS = frozenset(range(0, 7))
MAX_ENTRIES = 1000


class TiffError(ValueError):
    """A TIFF structure this module cannot edit safely (the file is left alone)."""


@dataclass(frozen=True)
class Entry:
    tag: int
    type: int
    count: int
    data: bytes  # the value bytes (inline or out-of-line), exactly as stored


@dataclass
class Edit:
    """Patches ``(offset, bytes)`` to apply in place, then ``append`` at the end."""

    patches: list[tuple[int, bytes]] = field(default_factory=list)
    append: bytes = b""
    changed: bool = True

    def apply(self, blob: bytes) -> bytes:
        out = bytearray(blob)
        for offset, data in self.patches:
            out[offset : offset + len(data)] = data
        return bytes(out) + self.append


@dataclass(frozen=True)
class _Ifd:
    offset: int
    entries: list[Entry]
    entry_offsets: list[int]
    next_offset: int
    regions: list[tuple[int, int]]  # (start, length) of the table and of out-of-line values


class _Reader:
    def __init__(self, blob: bytes) -> None:
        if len(blob) < 8:
            raise TiffError("the TIFF header is truncated")
        order = blob[:2]
        if order not in (b"II", b"MM"):
            raise TiffError("the TIFF header has no byte-order mark (II or MM)")
        self.bo = "<" if order == b"II" else ">"
        self.blob = blob
        magic = self.u16(2)
        if magic == 43:
            raise TiffError("BigTIFF is not supported by the built-in writer; install exiftool")
        if magic != 42:
            raise TiffError(f"the TIFF header has magic {magic}, not 42")

    def u16(self, off: int) -> int:
        return struct.unpack_from(self.bo + "H", self.blob, off)[0]

    def u32(self, off: int) -> int:
        return struct.unpack_from(self.bo + "I", self.blob, off)[0]

    def ifd(self, offset: int, what: str) -> _Ifd:
        if offset < 8 or offset + 2 > len(self.blob):
            raise TiffError(f"the {what} offset {offset} is outside the TIFF data")
        count = self.u16(offset)
        end = offset + 2 + 12 * count + 4
        if count > MAX_ENTRIES or end > len(self.blob):
            raise TiffError(f"the {what} table ({count} entries) runs past the TIFF data")
        entries, entry_offsets, regions = [], [], [(offset, end - offset)]
        for i in range(count):
            pos = offset + 2 + 12 * i
            tag, typ, n = struct.unpack_from(self.bo + "HHI", self.blob, pos)
            size = TYPE_SIZES.get(typ, 1) * n
            if size <= 4:
                data = self.blob[pos + 8 : pos + 8 + size]
            else:
                voff = self.u32(pos + 8)
                if voff + size > len(self.blob):
                    raise TiffError(f"{what} tag 0x{tag:04x} points past the TIFF data")
                data = self.blob[voff : voff + size]
                regions.append((voff, size))
            entries.append(Entry(tag, typ, n, data))
            entry_offsets.append(pos)
        return _Ifd(offset, entries, entry_offsets, self.u32(end - 4), regions)


def _pack_ifd(bo: str, base: int, entries: list[Entry], next_offset: int) -> bytes:
    """An IFD table placed at ``base``, out-of-line values right after it (word aligned)."""
    entries = sorted(entries, key=lambda e: e.tag)
    table_len = 2 + 12 * len(entries) + 4
    table = bytearray(struct.pack(bo + "H", len(entries)))
    values = bytearray()
    for e in entries:
        table += struct.pack(bo + "HHI", e.tag, e.type, e.count)
        if len(e.data) <= 4:
            table += e.data.ljust(4, b"\0")
        else:
            table += struct.pack(bo + "I", base + table_len + len(values))
            values += e.data + b"\0" * (len(e.data) % 2)
    table += struct.pack(bo + "I", next_offset)
    return bytes(table + values)


def _rational_dms(value: float, bo: str) -> bytes:
    micro = round(abs(value) * 3600 * 1_000_000)  # micro-arcseconds: 2.8e-10 degrees
    deg, rest = divmod(micro, 3_600_000_000)
    minutes, sec = divmod(rest, 60_000_000)
    return struct.pack(bo + "6I", deg, 1, minutes, 1, sec, 1_000_000)


def position_entries(lat: float, lon: float, alt: float | None, bo: str) -> list[Entry]:
    """GPS IFD entries for a position (EXIF 2.3 field types)."""
    entries = [
        Entry(1, ASCII, 2, (b"N" if lat >= 0 else b"S") + b"\0"),
        Entry(2, RATIONAL, 3, _rational_dms(lat, bo)),
        Entry(3, ASCII, 2, (b"E" if lon >= 0 else b"W") + b"\0"),
        Entry(4, RATIONAL, 3, _rational_dms(lon, bo)),
    ]
    if alt is not None:
        entries.append(Entry(5, BYTE, 1, bytes([1 if alt < 0 else 0])))
        entries.append(Entry(6, RATIONAL, 1, struct.pack(bo + "2I", round(abs(alt) * 1000), 1000)))
    return entries


def _zero(regions: list[tuple[int, int]], blob_len: int) -> list[tuple[int, bytes]]:
    return [(start, b"\0" * length) for start, length in regions if start + length <= blob_len]


def plan_gps_edit(blob: bytes, position: tuple[float, float, float | None] | None) -> Edit:
    """The edit that sets GPS to ``(lat, lon, alt)``, or removes it when ``position`` is None.

    ``blob`` is the TIFF structure (a whole TIFF file, or the bytes after ``Exif\\0\\0``).
    Raises :class:`TiffError` when the structure is broken; nothing is changed then.
    """
    r = _Reader(blob)
    bo = r.bo
    end = len(blob)
    ifd0 = r.ifd(r.u32(4), "IFD0")
    gps_index = next((i for i, e in enumerate(ifd0.entries) if e.tag == GPS_IFD_TAG), None)
    old_gps: _Ifd | None = None
    if gps_index is not None:
        try:
            old_gps = r.ifd(struct.unpack(bo + "I", ifd0.entries[gps_index].data[:4])[0], "GPS IFD")
        except (TiffError, struct.error):
            old_gps = None  # a dangling pointer: replaced below, nothing to zero
    edit = Edit()
    if old_gps is not None:
        edit.patches += _zero(old_gps.regions, len(blob))
    if position is None:
        if gps_index is None:
            return Edit(changed=False)
        # Shrink IFD0 in place: nothing points into the middle of an IFD table.
        kept = [off for i, off in enumerate(ifd0.entry_offsets) if i != gps_index]
        table = struct.pack(bo + "H", len(kept)) + b"".join(blob[o : o + 12] for o in kept)
        table += struct.pack(bo + "I", ifd0.next_offset) + b"\0" * 12
        edit.patches.append((ifd0.offset, table))
        return edit
    lat, lon, alt = position
    others = [e for e in (old_gps.entries if old_gps else []) if e.tag not in _POSITION_TAGS]
    version = next((e for e in (old_gps.entries if old_gps else []) if e.tag == 0), None)
    gps_entries = [version or Entry(0, BYTE, 4, bytes([2, 3, 0, 0]))]
    gps_entries += position_entries(lat, lon, alt, bo) + others
    appended = bytearray(b"\0" * (end % 2))  # IFDs start on a word boundary
    gps_off = end + len(appended)
    appended += _pack_ifd(bo, gps_off, gps_entries, 0)
    pointer = struct.pack(bo + "I", gps_off)
    if gps_index is not None:
        edit.patches.append((ifd0.entry_offsets[gps_index] + 8, pointer))
    else:
        appended += b"\0" * ((end + len(appended)) % 2)
        ifd0_off = end + len(appended)
        appended += _relocated_ifd0(bo, ifd0, blob, Entry(GPS_IFD_TAG, LONG, 1, pointer))
        edit.patches.append((4, struct.pack(bo + "I", ifd0_off)))
    edit.append = bytes(appended)
    return edit


def _relocated_ifd0(bo: str, old: _Ifd, blob: bytes, gps: Entry) -> bytes:
    """IFD0 with the GPS entry added: old entries copied verbatim (their out-of-line values
    stay where they were), sorted by tag as TIFF requires."""
    rows = [
        (e.tag, blob[off : off + 12]) for e, off in zip(old.entries, old.entry_offsets, strict=True)
    ]
    rows.append((gps.tag, struct.pack(bo + "HHI", gps.tag, gps.type, gps.count) + gps.data))
    rows.sort(key=lambda row: row[0])
    out = struct.pack(bo + "H", len(rows)) + b"".join(raw for _tag, raw in rows)
    return out + struct.pack(bo + "I", old.next_offset)


def empty_exif_block() -> bytes:
    """A big-endian TIFF structure with an empty IFD0, for files that have no EXIF yet."""
    return b"MM\0\x2a" + struct.pack(">I", 8) + struct.pack(">HI", 0, 0)
