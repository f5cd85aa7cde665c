import struct
from fractions import Fraction

import pytest
from exifread.utils import Ratio
from photo_samples import writable_copy
from PIL import Image

from locdiff_core.photo import xmp
from locdiff_core.photo.errors import PhotoErrorKind
from locdiff_core.photo.gps import (
    GpsSource,
    InvalidGpsError,
    dms_to_degrees,
    read_gps,
    read_gps_batch,
)
from locdiff_core.photo.reading import find_photos
from locdiff_core.photo.tiff_gps import plan_gps_edit


def test_every_sample_goes_through(samples):
    results = read_gps_batch(find_photos([samples]))
    assert len(results) >= 60
    for r in results:
        assert r.ok or isinstance(r.error.kind, PhotoErrorKind)


def test_arezzo_photos_read_in_every_rational_form(samples):
    paths = sorted((samples / "jpg" / "gps").glob("DSCN00*.jpg"))
    assert len(paths) == 9
    for r in read_gps_batch(paths):
        assert r.ok and r.value.source is GpsSource.EXIF
        assert 43.46 < r.value.lat < 43.47 and 11.87 < r.value.lon < 11.89, r.path
    # DSCN0010: 43/1 28/1 1407/500 N, 11/1 53/1 645599999/100000000 E, read exactly
    fix = read_gps(samples / "jpg" / "gps" / "DSCN0010.jpg")
    assert fix.lat == pytest.approx(43 + 28 / 60 + 1407 / 500 / 3600, abs=1e-12)
    assert fix.lon == pytest.approx(11 + 53 / 60 + 645599999 / 100000000 / 3600, abs=1e-12)
    assert fix.alt is None  # AltitudeRef without Altitude


def test_west_and_altitude(samples):
    fix = read_gps(samples / "jpg" / "hdr" / "iphone_hdr_YES.jpg")
    assert fix.lon == pytest.approx(-(3 + 43 / 60 + 29.11 / 3600), abs=1e-9)
    assert fix.alt == pytest.approx(11513 / 18)


def test_files_without_gps_give_none(samples):
    assert read_gps(samples / "jpg" / "Canon_40D.jpg") is None  # GPS IFD with a version only


def test_dms_forms_and_invalid_values():
    assert dms_to_degrees([Ratio(43, 1), Ratio(28, 1), Ratio(1407, 500)], "N", "lat") > 43
    assert dms_to_degrees([Fraction(3, 2)], "S", "lat") == -1.5
    assert dms_to_degrees([Ratio(10, 1), Ratio(305, 10)], "W", "lon") == pytest.approx(-10.508333)
    with pytest.raises(InvalidGpsError, match="zero denominator"):
        dms_to_degrees([Ratio(43, 1), Ratio(28, 0), Ratio(0, 1)], "N", "lat")
    with pytest.raises(InvalidGpsError, match="beyond 90"):
        dms_to_degrees([Ratio(95, 1), 0, 0], "N", "lat")
    with pytest.raises(InvalidGpsError, match="out of range"):
        dms_to_degrees([Ratio(10, 1), Ratio(75, 1), 0], "E", "lon")
    with pytest.raises(InvalidGpsError, match="reference"):
        dms_to_degrees([Ratio(10, 1), 0, 0], "X", "lon")


def _jpeg_with_gps(tmp_path, lat, lon, name="p.jpg"):
    path = tmp_path / name
    Image.new("RGB", (16, 16)).save(path)  # no EXIF: the writer adds a big-endian block
    data = path.read_bytes()
    from locdiff_core.photo.containers import Container, rewrite_exif

    new = rewrite_exif(data, Container.JPEG, lambda b: plan_gps_edit(b, (lat, lon, None)).apply(b))
    path.write_bytes(new)
    return path


def test_zero_denominator_in_a_file_is_invalid_not_zero(tmp_path):
    path = _jpeg_with_gps(tmp_path, 10.5, 20.25)
    data = path.read_bytes()
    good = struct.pack(">6I", 10, 1, 30, 1, 0, 1_000_000)
    assert data.count(good) == 1
    path.write_bytes(data.replace(good, struct.pack(">6I", 10, 0, 30, 1, 0, 1_000_000)))
    result = read_gps_batch([path])[0]
    assert result.error.kind is PhotoErrorKind.INVALID_GPS
    assert "zero denominator" in result.error.message


def test_null_island_is_invalid(tmp_path):
    path = _jpeg_with_gps(tmp_path, 0.0, 0.0)
    assert read_gps_batch([path])[0].error.kind is PhotoErrorKind.INVALID_GPS


def test_embedded_xmp_gps(tmp_path):
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:exif="http://ns.adobe.com/exif/1.0/"><exif:GPSLatitude>48,51.3N</exif:GPSLatitude>'
        "<exif:GPSLongitude>2,21,5.4E</exif:GPSLongitude><exif:GPSAltitude>355/10"
        "</exif:GPSAltitude></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    path = tmp_path / "x.jpg"
    Image.new("RGB", (8, 8)).save(path, xmp=packet.encode())
    fix = read_gps(path)
    assert fix.source is GpsSource.XMP
    assert fix.lat == pytest.approx(48 + 51.3 / 60)
    assert fix.lon == pytest.approx(2 + 21 / 60 + 5.4 / 3600)
    assert fix.alt == pytest.approx(35.5)


def test_sidecar_wins_over_exif(tmp_path, samples):
    photo = writable_copy(samples / "jpg" / "gps" / "DSCN0010.jpg", tmp_path)
    sidecar = photo.with_suffix(".xmp")  # the Adobe name is found too
    sidecar.write_bytes(xmp.updated_sidecar(None, (-33.8568, 151.2153, 5.0)))
    fix = read_gps(photo)
    assert fix.source is GpsSource.SIDECAR
    assert (fix.lat, fix.lon, fix.alt) == pytest.approx((-33.8568, 151.2153, 5.0), abs=1e-9)


def test_broken_sidecar_falls_back_but_is_not_silent(tmp_path, samples):
    photo = writable_copy(samples / "jpg" / "Canon_40D.jpg", tmp_path)
    photo.with_name(photo.name + ".xmp").write_text("<x:xmpmeta oops")
    result = read_gps_batch([photo])[0]
    assert result.error.kind is PhotoErrorKind.INVALID_GPS and "sidecar" in result.error.message


def test_xmp_coordinate_forms():
    assert xmp.parse_coordinate("43,28.0153N", "lat") == pytest.approx(43 + 28.0153 / 60)
    assert xmp.parse_coordinate("3,43,29.11W", "lon") == pytest.approx(
        -(3 + 43 / 60 + 29.11 / 3600)
    )
    assert xmp.parse_coordinate("12.5S", "lat") == -12.5
    for bad in ("91,0N", "10,75.0E", "abc", "10,0E"):
        with pytest.raises(xmp.XmpGpsError):
            xmp.parse_coordinate(bad, "lat")
    text = xmp.format_coordinate(-151.2153456, "lon")
    assert xmp.parse_coordinate(text, "lon") == pytest.approx(-151.2153456, abs=1e-9)


def test_sidecar_update_keeps_other_metadata():
    existing = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="1,0N">'
        b"<dc:subject>holiday</dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    new = xmp.updated_sidecar(existing, (45.0, -7.5, None))
    assert b"holiday" in new and b"dc:subject" in new
    assert xmp.gps_from_packet(new) == pytest.approx((45.0, -7.5, None))
    removed = xmp.updated_sidecar(new, None)
    assert xmp.gps_from_packet(removed) is None and b"holiday" in removed
