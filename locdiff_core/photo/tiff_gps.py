"""Editing the GPS IFD of a TIFF structure (an EXIF block, or a whole TIFF file) losslessly.

The edit never moves a byte that something else may point at. Maker notes, thumbnails and strip
data are addressed by offsets from the TIFF header, often in ways only the camera maker knows,
so instead of re-laying the structure out this module:

* walks every structure a reader follows (IFD0 and the IFDs chained after it, the Exif, Interop
  and Sub IFDs, strips, tiles, the thumbnail and every out-of-line value) and records the bytes
  each one uses: these *live* regions are never changed;
* refuses a structure with a pointer past its end (appending would make that pointer land on
  the new data) or with an IFD0 table that overlaps other data (a corrupt entry count);
* appends the new GPS IFD at the end (word-aligned), holding the position and the old GPS
  entries that are well-formed (right tag, type and count; corrupt ones are dropped);
* rewrites IFD0's table in place with exactly one ``GPSInfo`` entry of type LONG (duplicates and
  wrong types go), or, when IFD0 has no ``GPSInfo`` entry, appends a copy of IFD0 with the entry
  added and points the header at the copy (entries, their values and the next-IFD link are
  unchanged);
* zeroes the bytes of every old GPS IFD and its values that no live structure uses, so no stale
  or private position stays in the file;
* for removal, drops every ``GPSInfo`` entry from IFD0 in place (the table shrinks).

The result is a list of byte patches plus bytes to append, so a caller can apply it to an EXIF
block in memory or to a copy of a large TIFF file. EXIF 2.32 / TIFF 6.0 field layout.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass, field

GPS_IFD_TAG = 0x8825
EXIF_IFD_TAG = 0x8769
INTEROP_IFD_TAG = 0xA005
SUB_IFDS_TAG = 0x014A
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, IFD = 1, 2, 3, 4, 5, 7, 13
# Tags this module owns: version, latitude and longitude with refs, altitude with ref.
_POSITION_TAGS = frozenset(range(0, 7))
MAX_ENTRIES = 1000
_MAX_IFDS = 64  # IFDs walked per structure: real files have under ten; a loop ends here
# (offset tag, byte-count tag): data blocks addressed from an IFD
_DATA_TAGS = ((0x0111, 0x0117), (0x0144, 0x0145), (0x0201, 0x0202))
# GPS IFD tags (EXIF 2.32, table 15): tag -> (type, count or None for any)
_GPS_FIELDS = {
    0: (BYTE, 4), 1: (ASCII, 2), 2: (RATIONAL, 3), 3: (ASCII, 2), 4: (RATIONAL, 3),
    5: (BYTE, 1), 6: (RATIONAL, 1), 7: (RATIONAL, 3), 8: (ASCII, None), 9: (ASCII, 2),
    10: (ASCII, 2), 11: (RATIONAL, 1), 12: (ASCII, 2), 13: (RATIONAL, 1), 14: (ASCII, 2),
    15: (RATIONAL, 1), 16: (ASCII, 2), 17: (RATIONAL, 1), 18: (ASCII, None), 19: (ASCII, 2),
    20: (RATIONAL, 3), 21: (ASCII, 2), 22: (RATIONAL, 3), 23: (ASCII, 2), 24: (RATIONAL, 1),
    25: (ASCII, 2), 26: (RATIONAL, 1), 27: (UNDEFINED, None), 28: (UNDEFINED, None),
    29: (ASCII, 11), 30: (SHORT, 1), 31: (RATIONAL, 1),
}  # fmt: skip
_MAX_GPS_VALUE = 4096  # bytes: a longer ProcessingMethod or AreaInformation is not a real one


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

    @property
    def table_end(self) -> int:
        return self.offset + self.regions[0][1]


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

    def ifd(self, offset: int, what: str, *, lenient: bool = False) -> _Ifd:
        """The IFD at ``offset``. A value past the end raises, or with ``lenient`` drops that
        entry (for a GPS IFD, whose broken entries are not copied anyway)."""
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
                    if lenient:
                        continue
                    raise TiffError(f"{what} tag 0x{tag:04x} points past the TIFF data")
                data = self.blob[voff : voff + size]
                regions.append((voff, size))
            entries.append(Entry(tag, typ, n, data))
            entry_offsets.append(pos)
        return _Ifd(offset, entries, entry_offsets, self.u32(end - 4), regions)

    def values(self, entry: Entry) -> list[int]:
        """The integers of a SHORT, LONG or IFD entry (offsets, counts)."""
        fmt = {SHORT: "H", LONG: "I", IFD: "I"}.get(entry.type)
        if fmt is None:
            return []
        return list(struct.unpack(f"{self.bo}{entry.count}{fmt}", entry.data))


@dataclass
class _Structure:
    """Every IFD a reader follows, except the GPS IFDs, and the bytes they use."""

    reader: _Reader
    ifd0: _Ifd
    live: list[tuple[int, int]]
    gps_entries: list[int]  # indices of GPSInfo entries in IFD0
    gps_ifds: list[_Ifd]  # the old GPS IFDs that could be read


def _walk(blob: bytes) -> _Structure:
    r = _Reader(blob)
    end = len(blob)
    ifd0 = r.ifd(r.u32(4), "IFD0")
    live: list[tuple[int, int]] = [(0, 8)]
    pending: list[tuple[int, str]] = []
    seen: set[int] = set()

    def visit(ifd: _Ifd, what: str) -> None:
        live.extend(ifd.regions)
        for entry in ifd.entries:
            if entry.tag in (EXIF_IFD_TAG, INTEROP_IFD_TAG, SUB_IFDS_TAG):
                name = {EXIF_IFD_TAG: "Exif IFD", INTEROP_IFD_TAG: "Interop IFD"}
                pending.extend((v, name.get(entry.tag, "Sub IFD")) for v in r.values(entry))
        by_tag = {e.tag: e for e in ifd.entries}
        for offsets_tag, counts_tag in _DATA_TAGS:
            if offsets_tag in by_tag and counts_tag in by_tag:
                offsets, counts = r.values(by_tag[offsets_tag]), r.values(by_tag[counts_tag])
                for start, length in zip(offsets, counts, strict=False):
                    if start + length > end:
                        raise TiffError(
                            f"{what} tag 0x{offsets_tag:04x} points past the end of the data"
                        )
                    live.append((start, length))

    chain, what = ifd0, "IFD0"
    for index in range(_MAX_IFDS):
        seen.add(chain.offset)
        visit(chain, what)
        nxt = chain.next_offset
        if nxt == 0 or nxt in seen:
            break
        if nxt >= end:
            raise TiffError(f"the link after {what} points past the end of the EXIF data")
        what = f"IFD{index + 1}"
        chain = r.ifd(nxt, what)
    while pending:
        offset, what = pending.pop()
        if offset in seen:
            continue
        if offset >= end:
            raise TiffError(f"the {what} pointer points past the end of the EXIF data")
        if len(seen) >= _MAX_IFDS:
            raise TiffError(f"the EXIF data holds more than {_MAX_IFDS} IFDs")
        seen.add(offset)
        visit(r.ifd(offset, what), what)
    table = (ifd0.offset, ifd0.table_end - ifd0.offset)
    if any(region != table and _overlap(region, table) for region in live):
        raise TiffError("IFD0 overlaps other EXIF data (its entry count is corrupt)")
    gps_entries = [i for i, e in enumerate(ifd0.entries) if e.tag == GPS_IFD_TAG]
    gps_ifds = []
    for i in gps_entries:
        entry = ifd0.entries[i]
        pointer = r.values(entry)[:1] if entry.count == 1 else []
        if pointer:
            with contextlib.suppress(TiffError):  # dangling: replaced, nothing to zero
                gps_ifds.append(r.ifd(pointer[0], "GPS IFD", lenient=True))
    return _Structure(r, ifd0, live, gps_entries, gps_ifds)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def _free_parts(region: tuple[int, int], live: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``region`` that no live region covers."""
    parts = [region]
    for lstart, llen in live:
        lend = lstart + llen
        cut = []
        for start, length in parts:
            end = start + length
            if lend <= start or lstart >= end:
                cut.append((start, length))
                continue
            if start < lstart:
                cut.append((start, lstart - start))
            if lend < end:
                cut.append((lend, end - lend))
        parts = cut
    return parts


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


def _well_formed(entry: Entry) -> bool:
    """A GPS entry of a known tag with the type and count EXIF gives it."""
    expected = _GPS_FIELDS.get(entry.tag)
    if expected is None or entry.type != expected[0] or len(entry.data) > _MAX_GPS_VALUE:
        return False
    return expected[1] is None or entry.count == expected[1]


def _zero_old_gps(s: _Structure, size: int) -> list[tuple[int, bytes]]:
    patches = []
    for gps in s.gps_ifds:
        for region in gps.regions:
            for start, length in _free_parts(region, s.live):
                if start + length <= size:
                    patches.append((start, b"\0" * length))
    return patches


def _ifd0_in_place(s: _Structure, blob: bytes, gps_pointer: bytes | None) -> tuple[int, bytes]:
    """IFD0's table rewritten where it is: every ``GPSInfo`` entry dropped, then one LONG
    entry with ``gps_pointer`` added when given; the freed tail is zeroed."""
    bo, ifd0 = s.reader.bo, s.ifd0
    rows = [
        (ifd0.entries[i].tag, blob[off : off + 12])
        for i, off in enumerate(ifd0.entry_offsets)
        if i not in s.gps_entries
    ]
    if gps_pointer is not None:
        rows.append((GPS_IFD_TAG, struct.pack(bo + "HHI", GPS_IFD_TAG, LONG, 1) + gps_pointer))
    rows.sort(key=lambda row: row[0])
    table = struct.pack(bo + "H", len(rows)) + b"".join(raw for _tag, raw in rows)
    table += struct.pack(bo + "I", ifd0.next_offset)
    size = ifd0.table_end - ifd0.offset
    assert len(table) <= size, "IFD0 held a GPSInfo entry, so the table does not grow"
    return ifd0.offset, table.ljust(size, b"\0")


def plan_gps_edit(blob: bytes, position: tuple[float, float, float | None] | None) -> Edit:
    """The edit that sets GPS to ``(lat, lon, alt)``, or removes it when ``position`` is None.

    ``blob`` is the TIFF structure (a whole TIFF file, or the bytes after ``Exif\\0\\0``).
    Raises :class:`TiffError` when the structure is broken; nothing is changed then.
    """
    s = _walk(blob)
    bo, end = s.reader.bo, len(blob)
    edit = Edit(patches=_zero_old_gps(s, end))
    if position is None:
        if not s.gps_entries:
            return Edit(changed=False)
        edit.patches.append(_ifd0_in_place(s, blob, None))
        return edit
    old = [e for gps in s.gps_ifds[:1] for e in gps.entries if _well_formed(e)]
    version = next((e for e in old if e.tag == 0), Entry(0, BYTE, 4, bytes([2, 3, 0, 0])))
    gps_entries = [version, *position_entries(*position, bo)]
    gps_entries += [e for e in old if e.tag not in _POSITION_TAGS]
    appended = bytearray(b"\0" * (end % 2))  # IFDs start on a word boundary
    gps_off = end + len(appended)
    appended += _pack_ifd(bo, gps_off, gps_entries, 0)
    pointer = struct.pack(bo + "I", gps_off)
    if s.gps_entries:
        edit.patches.append(_ifd0_in_place(s, blob, pointer))
    else:
        appended += b"\0" * ((end + len(appended)) % 2)
        ifd0_off = end + len(appended)
        appended += _relocated_ifd0(bo, s.ifd0, blob, Entry(GPS_IFD_TAG, LONG, 1, pointer))
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
