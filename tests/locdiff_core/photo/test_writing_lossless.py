"""GPS writes on every sample: exact coordinates, identical image data, every other tag kept.

The reader that checks the result is independent of the writer: exiftool when installed,
exifread otherwise (and always Pillow for the decoded pixels)."""

import io

import exifread
import numpy as np
import pytest
from photo_samples import (
    HAS_EXIFTOOL,
    exiftool_tags,
    needs_exiftool,
    sample_files,
    sample_id,
    writable_copy,
)
from PIL import Image

from locdiff_core.photo.containers import EXIF_PREFIX, jpeg_scan, jpeg_segments
from locdiff_core.photo.writing import (
    BackupMode,
    WriteConfig,
    WriteMethod,
    WriterBackend,
    remove_gps,
    write_gps,
)

LAT, LON, ALT = -33.85678912, 151.21534567, -12.25
BACKENDS = [
    WriterBackend.BUILTIN,
    pytest.param(WriterBackend.EXIFTOOL, marks=needs_exiftool),
]
IGNORED_GROUPS = ("File:", "System:", "ExifTool:", "GPS:", "Composite:")
# Where a block sits in the file, not what it holds (exiftool may lay the file out anew).
LAYOUT_SUFFIXES = ("Offset", "Offsets", "Start")
# Given a file without EXIF, exiftool creates the tags EXIF requires in IFD0 (resolution copied
# from JFIF); the built-in writer adds nothing but GPS.
EXIFTOOL_MANDATORY = {
    "IFD0:XResolution",
    "IFD0:YResolution",
    "IFD0:ResolutionUnit",
    "IFD0:YCbCrPositioning",
}


def independent_gps(path):
    """(lat, lon, alt) as read by exiftool, or by exifread without exiftool."""
    if HAS_EXIFTOOL:
        tags = exiftool_tags(path)
        alt = tags.get("GPS:GPSAltitude")
        if alt is not None and tags.get("GPS:GPSAltitudeRef") == 1:
            alt = -alt
        lat, lon = tags.get("GPS:GPSLatitude"), tags.get("GPS:GPSLongitude")
        if lat is not None and tags.get("GPS:GPSLatitudeRef") == "S":
            lat = -lat
        if lon is not None and tags.get("GPS:GPSLongitudeRef") == "W":
            lon = -lon
        return lat, lon, alt
    with Image.open(path) as img:  # Pillow's own EXIF parser, not exifread nor ours
        gps = img.getexif().get_ifd(0x8825)
    if 2 not in gps:
        return None, None, None

    def deg(tag):
        d, m, sec = (float(v) for v in gps[tag])
        return (-1 if gps[tag - 1] in ("S", "W") else 1) * (d + m / 60 + sec / 3600)

    return deg(2), deg(4), float(gps[6]) * (-1 if gps.get(5) == b"\x01" else 1)


def other_tags(path):
    """Every non-GPS tag, by the independent reader, maker notes included."""
    if HAS_EXIFTOOL:
        return {
            k: v
            for k, v in exiftool_tags(path).items()
            if not k.startswith(IGNORED_GROUPS) and not k.endswith(LAYOUT_SUFFIXES)
        }
    with Image.open(path) as img:  # exifread misses EXIF after XMP; Pillow finds the block
        block = img.info.get("exif", b"")
    data = block.removeprefix(EXIF_PREFIX) if block else path.read_bytes()
    tags = exifread.process_file(io.BytesIO(data), details=True)
    # corrupted.jpg's maker note runs past its block, so exifread reads whatever follows as an
    # empty unknown tag; exiftool (the reader when installed) sees the maker note unchanged.
    return {
        k: str(v)
        for k, v in tags.items()
        if "GPS" not in k  # GPSInfo is the pointer
        and not (k.startswith("MakerNote Tag 0x") and str(v) == "[]")
    }


def pixels(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
@pytest.mark.parametrize("sample", sample_files(), ids=sample_id)
def test_write_then_remove_is_lossless(sample, backend, tmp_path):
    photo = writable_copy(sample, tmp_path)
    before_bytes = photo.read_bytes()
    before_tags = other_tags(photo)
    config = WriteConfig(backend=backend, backup=BackupMode.NONE)

    [result] = write_gps([photo], LAT, LON, ALT, config)
    assert result.ok, result.error
    assert result.value.method in (WriteMethod.BUILTIN, WriteMethod.EXIFTOOL)
    lat, lon, alt = independent_gps(photo)
    assert abs(lat - LAT) < 1e-7 and abs(lon - LON) < 1e-7 and abs(alt - ALT) < 1e-3
    after = photo.read_bytes()
    if sample.suffix == ".jpg":
        assert jpeg_scan(after) == jpeg_scan(before_bytes)
    assert np.array_equal(pixels(photo), pixels(sample))
    assert_same_tags(other_tags(photo), before_tags, backend)
    if backend is WriterBackend.BUILTIN and sample.suffix == ".jpg":
        assert _non_exif_segments(after) == _non_exif_segments(before_bytes)

    [removed] = remove_gps([photo], config)
    assert removed.ok, removed.error
    assert independent_gps(photo)[:2] == (None, None)
    assert_same_tags(other_tags(photo), before_tags, backend)
    assert np.array_equal(pixels(photo), pixels(sample))


def assert_same_tags(after, before, backend):
    if backend is WriterBackend.EXIFTOOL:
        assert set(after) - set(before) <= EXIFTOOL_MANDATORY
        after = {k: v for k, v in after.items() if k in before}
    assert after == before


def _non_exif_segments(data):
    """JFIF, XMP, ICC, IPTC, comments, tables: every segment but the EXIF one, as bytes."""
    return [
        data[s:e]
        for m, s, e in jpeg_segments(data)
        if not (m == 0xE1 and data[s + 4 : s + 10] == EXIF_PREFIX)
    ]


def test_builtin_remove_leaves_no_trace_of_the_position(samples, tmp_path):
    photo = writable_copy(samples / "jpg" / "gps" / "DSCN0010.jpg", tmp_path)
    with open(photo, "rb") as f:
        tags = exifread.process_file(f, details=False)
    lat = tags["GPS GPSLatitude"]  # its rationals, as stored (EXIF is the first segment)
    lat_raw = photo.read_bytes()[12 + lat.field_offset :][: lat.field_length]
    assert len(lat_raw) == 24
    assert lat_raw in photo.read_bytes() and b"WGS-84" in photo.read_bytes()
    [r] = remove_gps([photo], WriteConfig(backend=WriterBackend.BUILTIN, backup=BackupMode.NONE))
    assert r.ok and r.value.method is WriteMethod.BUILTIN
    data = photo.read_bytes()
    assert lat_raw not in data
    assert b"WGS-84" not in data  # the rest of the old GPS IFD is wiped too
