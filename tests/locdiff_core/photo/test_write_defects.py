"""Regression tests for writes that said ``done`` and were not: each damaged file is built here
from a real sample, written or cleared, and read back by our reader, exifread and exiftool."""

from __future__ import annotations

import io
import struct

import exifread
import numpy as np
import pytest
from exif_surgery import (
    EXIF_OFFSET,
    GPS_INFO,
    LONG,
    SHORT,
    SIZES,
    Tag,
    assemble,
    byte_order,
    camera_tags,
    exif_span,
    exiftool_camera,
    exiftool_latitudes,
    gps_tags,
    ifd_rows,
    patched,
    replace_exif,
    row,
    webp_with_exif_chunks,
    with_exif_blocks,
)
from photo_samples import HAS_EXIFTOOL, needs_exiftool, writable_copy
from PIL import Image

from locdiff_core.photo import writing
from locdiff_core.photo.errors import PhotoErrorKind
from locdiff_core.photo.gps import read_gps
from locdiff_core.photo.leftovers import find_leftovers
from locdiff_core.photo.writing import (
    BackupMode,
    WriteConfig,
    WriteMethod,
    WriterBackend,
    remove_gps,
    write_gps,
)

NEW = (-33.8567891, 151.2153457)
OLD = (43.4674483, 11.8851267)
BUILTIN = WriteConfig(backend=WriterBackend.BUILTIN, backup=BackupMode.NONE)
AUTO = WriteConfig(backend=WriterBackend.AUTO, backup=BackupMode.NONE)


@pytest.fixture
def nikon(samples, tmp_path):
    """A real camera JPEG with GPS (little-endian EXIF, maker note)."""
    return writable_copy(samples / "jpg" / "gps" / "DSCN0010.jpg", tmp_path / "src")


def tiff_of(path) -> bytes:
    data = path.read_bytes()
    start, end = exif_span(data)
    return data[start:end]


def put(path, data: bytes):
    path.write_bytes(data)
    return path


def damaged(path, change) -> bytes:
    """Apply ``change(tiff) -> tiff`` to the first EXIF block of the JPEG at ``path``."""
    data = replace_exif(path.read_bytes(), change(tiff_of(path)))
    path.write_bytes(data)
    return data


def camera_exifread(path) -> dict[str, str]:
    with open(path, "rb") as f:
        tags = exifread.process_file(f, details=False)
    keys = ("Image Make", "Image Model", "EXIF DateTimeOriginal", "Image DateTime")
    return {k: str(tags[k]) for k in keys if k in tags}


def assert_position(path, lat_lon):
    fix = read_gps(path)
    assert fix is not None, "our reader finds no position"
    assert fix.lat == pytest.approx(lat_lon[0], abs=1e-7)
    assert fix.lon == pytest.approx(lat_lon[1], abs=1e-7)
    if HAS_EXIFTOOL:
        latitudes = exiftool_latitudes(path)
        assert latitudes, "exiftool finds no position"
        for key, value in latitudes.items():
            want = abs(lat_lon[0]) if key.startswith("GPS:") else lat_lon[0]
            assert value == pytest.approx(want, abs=1e-7), key


def assert_no_position(path):
    assert read_gps(path) is None
    if HAS_EXIFTOOL:
        assert exiftool_latitudes(path) == {}


def assert_untouched(path, before: bytes):
    assert path.read_bytes() == before
    assert find_leftovers([path.parent], now=float("inf")) == []


# 1. success without a position ------------------------------------------------------------


def test_a_gps_ifd_with_zero_entries_gets_the_position(nikon):
    def empty_gps(tiff):
        gps = row(tiff, GPS_INFO).field
        return patched(tiff, gps, struct.pack(byte_order(tiff) + "H", 0))

    damaged(nikon, empty_gps)
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert r.ok, r.error
    assert_position(nikon, NEW)


def test_a_short_gps_info_entry_becomes_one_long_entry(nikon):
    def short_pointer(tiff):
        bo, gps = byte_order(tiff), row(tiff, GPS_INFO)
        raw = struct.pack(bo + "HHI", GPS_INFO, SHORT, 1) + struct.pack(bo + "HH", gps.field, 0)
        return patched(tiff, gps.at, raw)

    damaged(nikon, short_pointer)
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert r.ok, r.error
    entries = [e for e in ifd_rows(tiff_of(nikon)) if e.tag == GPS_INFO]
    assert [(e.type, e.count) for e in entries] == [(LONG, 1)]
    assert_position(nikon, NEW)


def test_corrupt_old_gps_entries_are_not_copied(nikon):
    def corrupt_last_entry(tiff):
        bo = byte_order(tiff)
        last = ifd_rows(tiff, row(tiff, GPS_INFO).field)[-1]
        return patched(tiff, last.at, struct.pack(bo + "HHI", last.tag, 99, 0x7FFFFFFF))

    damaged(nikon, corrupt_last_entry)
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert r.ok, r.error
    tiff = tiff_of(nikon)
    new_gps = ifd_rows(tiff, row(tiff, GPS_INFO).field)
    assert all(e.type in SIZES for e in new_gps)
    assert all(e.count * SIZES[e.type] <= 4096 for e in new_gps)
    assert_position(nikon, NEW)


def test_a_dangling_exif_pointer_is_refused_and_the_file_kept(nikon):
    def dangling(tiff):
        bo, exif = byte_order(tiff), row(tiff, EXIF_OFFSET)
        return patched(tiff, exif.at + 8, struct.pack(bo + "I", len(tiff) + 64))

    before = damaged(nikon, dangling)
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert not r.ok and r.error.kind is PhotoErrorKind.CORRUPT
    assert "not changed" in r.error.message
    assert_untouched(nikon, before)


@needs_exiftool
def test_a_broken_tiff_header_is_verified_or_left_alone(nikon):
    before = damaged(nikon, lambda tiff: b"XX" + tiff[2:])
    [r] = write_gps([nikon], *NEW, config=AUTO)
    if r.ok:
        assert r.value.method is WriteMethod.EXIFTOOL and "built-in" in r.warning
        assert_position(nikon, NEW)
    else:
        assert_untouched(nikon, before)


# 2. success that destroys metadata ----------------------------------------------------------


def test_gps_info_pointing_at_ifd0_keeps_the_camera_tags(nikon):
    def at_ifd0(tiff):
        return patched(tiff, row(tiff, GPS_INFO).at + 8, tiff[4:8])

    damaged(nikon, at_ifd0)
    camera = camera_exifread(nikon)
    exiftool_before = exiftool_camera(nikon) if HAS_EXIFTOOL else None
    [r] = write_gps([nikon], *NEW, config=AUTO)
    assert r.ok, r.error
    assert camera_exifread(nikon) == camera and len(camera) >= 3
    if HAS_EXIFTOOL:
        assert exiftool_camera(nikon) == exiftool_before
    assert_position(nikon, NEW)


def test_a_gps_table_with_a_corrupt_count_keeps_the_camera_tags(nikon):
    def huge_count(tiff):
        gps = row(tiff, GPS_INFO).field
        return patched(tiff, gps, struct.pack(byte_order(tiff) + "H", 0x0FFF))

    damaged(nikon, huge_count)
    camera = camera_exifread(nikon)
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert r.ok, r.error
    assert camera_exifread(nikon) == camera and len(camera) >= 3
    assert_position(nikon, NEW)


def test_a_tiff_whose_gps_pointer_is_the_header_stays_a_tiff(samples, tmp_path):
    photo = writable_copy(samples / "tiff" / "Arbitro.tiff", tmp_path)
    data = photo.read_bytes()
    bo, last = byte_order(data), ifd_rows(data)[-1]
    assert last.tag < GPS_INFO
    put(photo, patched(data, last.at, struct.pack(bo + "HHII", GPS_INFO, LONG, 1, 0)))
    pixels = np.asarray(Image.open(photo))
    before = photo.read_bytes()
    [r] = write_gps([photo], *NEW, config=BUILTIN)
    after = photo.read_bytes()
    assert after[:4] == before[:4]  # byte order and magic untouched
    with Image.open(photo) as im:
        assert np.array_equal(np.asarray(im), pixels)
    if r.ok:
        assert_position(photo, NEW)
    else:
        assert_untouched(photo, before)


# 3. remove leaves the position ---------------------------------------------------------------


def two_block_jpeg(nikon) -> bytes:
    tiff = tiff_of(nikon)
    return put(nikon, with_exif_blocks(nikon.read_bytes(), tiff, tiff)).read_bytes()


def test_remove_clears_a_second_exif_segment(nikon):
    two_block_jpeg(nikon)
    if HAS_EXIFTOOL:
        assert len(exiftool_latitudes(nikon)) >= 2  # both segments are seen
    [r] = remove_gps([nikon], config=BUILTIN)
    assert r.ok, r.error
    assert_no_position(nikon)


def test_write_leaves_no_older_position_in_a_second_exif_segment(nikon):
    two_block_jpeg(nikon)
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert r.ok, r.error
    assert_position(nikon, NEW)


def with_two_gps_info_entries(nikon, bo: str, first, second) -> None:
    """The JPEG given an EXIF block whose IFD0 holds two GPSInfo entries (``first`` and
    ``second`` positions); a reader shows one of them, exiftool may show both."""
    ifds = {
        "ifd0": [*camera_tags(), Tag(GPS_INFO, LONG, 1, "a"), Tag(GPS_INFO, LONG, 1, "b")],
        "a": gps_tags(bo, *first),
        "b": gps_tags(bo, *second),
    }
    put(nikon, with_exif_blocks(nikon.read_bytes(), assemble(bo, ifds)))


def gps_info_entries(path) -> list:
    return [e for e in ifd_rows(tiff_of(path)) if e.tag == GPS_INFO]


def test_remove_clears_duplicate_gps_info_entries(nikon):
    with_two_gps_info_entries(nikon, "<", NEW, OLD)
    [r] = remove_gps([nikon], config=BUILTIN)
    assert r.ok, r.error
    assert gps_info_entries(nikon) == []
    assert_no_position(nikon)
    assert camera_exifread(nikon)["Image Make"] == "NIKON"


def test_write_replaces_duplicate_gps_info_entries_with_one(nikon):
    with_two_gps_info_entries(nikon, ">", OLD, OLD)
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert r.ok, r.error
    assert len(gps_info_entries(nikon)) == 1
    assert_position(nikon, NEW)


def webp_with_two_exif_chunks(path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (10, 120, 200)).save(buffer, "WEBP", lossless=True, exif=b"")
    base = buffer.getvalue()
    if base[12:16] != b"VP8X":  # Pillow wrote a simple file: add the extended header
        canvas = struct.pack("<I", 23)[:3] + struct.pack("<I", 15)[:3]
        vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + canvas
        body = vp8x + base[12:]
        base = b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
    one = assemble(
        "<", {"ifd0": [*camera_tags(), Tag(GPS_INFO, LONG, 1, "g")], "g": gps_tags("<", *OLD)}
    )
    path.write_bytes(webp_with_exif_chunks(base, one, one))


def webp_exif_chunks(data: bytes) -> list[bytes]:
    chunks, i = [], 12
    while i + 8 <= len(data):
        fourcc, size = data[i : i + 4], struct.unpack_from("<I", data, i + 4)[0]
        if fourcc == b"EXIF":
            chunks.append(data[i + 8 : i + 8 + size])
        i += 8 + size + size % 2
    return chunks


def test_remove_clears_a_second_webp_exif_chunk(tmp_path):
    photo = tmp_path / "two.webp"
    webp_with_two_exif_chunks(photo)
    pixels = np.asarray(Image.open(photo))
    [r] = remove_gps([photo], config=BUILTIN)
    assert r.ok, r.error
    chunks = webp_exif_chunks(photo.read_bytes())
    assert len(chunks) == 2
    for chunk in chunks:
        body = chunk[6:] if chunk.startswith(b"Exif\0\0") else chunk
        assert [e for e in ifd_rows(body) if e.tag == GPS_INFO] == []
    assert_no_position(photo)
    assert np.array_equal(np.asarray(Image.open(photo)), pixels)


XMP_WITH_GPS = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'exif:GPSLatitude="43,28.04690N" exif:GPSLongitude="11,53.10760E">'
    b"<dc:creator><rdf:Seq><rdf:li>A. Photographer</rdf:li></rdf:Seq></dc:creator>"
    b"</rdf:Description></rdf:RDF></x:xmpmeta>\n"
    b'<?xpacket end="w"?>'
)


def test_remove_clears_the_xmp_position_and_keeps_the_rest(nikon):
    put(nikon, with_exif_blocks(nikon.read_bytes(), tiff_of(nikon), xmp=XMP_WITH_GPS))
    [r] = remove_gps([nikon], config=BUILTIN)
    assert r.ok, r.error
    assert_no_position(nikon)
    data = nikon.read_bytes()
    assert b"A. Photographer" in data and b"GPSLatitude" not in data


def test_write_moves_the_xmp_position_too(nikon):
    put(nikon, with_exif_blocks(nikon.read_bytes(), tiff_of(nikon), xmp=XMP_WITH_GPS))
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert r.ok, r.error
    assert_position(nikon, NEW)  # every reader, XMP included
    assert b"A. Photographer" in nikon.read_bytes()


# verification ------------------------------------------------------------------------------


class _Forgetful:
    """A built-in edit that silently writes no position: what verification must catch."""

    changed = True

    def __init__(self, edit):
        self.edit = edit

    def apply(self, blob):
        return self.edit.apply(blob)


def forget_position(monkeypatch):
    real = writing.plan_gps_edit
    monkeypatch.setattr(writing, "plan_gps_edit", lambda blob, _pos: _Forgetful(real(blob, None)))


def test_a_write_that_does_not_verify_keeps_the_original(nikon, monkeypatch):
    forget_position(monkeypatch)
    before = nikon.read_bytes()
    [r] = write_gps([nikon], *NEW, config=BUILTIN)
    assert not r.ok and r.error.kind is PhotoErrorKind.WRITE_FAILED
    assert "did not verify" in r.error.message and "our reader" in r.error.message
    assert_untouched(nikon, before)


@needs_exiftool
def test_auto_falls_back_to_exiftool_and_says_so(nikon, monkeypatch):
    forget_position(monkeypatch)
    [r] = write_gps([nikon], *NEW, config=AUTO)
    assert r.ok, r.error
    assert r.value.method is WriteMethod.EXIFTOOL
    assert "did not verify" in r.warning and "exiftool wrote it" in r.warning
    assert_position(nikon, NEW)
