"""Backups, undo, modification times, read-only files, full disks, and the other formats."""

import errno
import os

import numpy as np
import pytest
from photo_samples import HAS_EXIFTOOL, needs_exiftool, writable_copy
from PIL import Image

from locdiff_core.photo import safe_io
from locdiff_core.photo.errors import PhotoErrorKind
from locdiff_core.photo.gps import GpsSource, read_gps
from locdiff_core.photo.reading import heif_available
from locdiff_core.photo.undo import undo_last_batch
from locdiff_core.photo.writing import (
    BackupMode,
    WriteConfig,
    WriteMethod,
    WriterBackend,
    check_position,
    remove_gps,
    write_gps,
)

BUILTIN = WriteConfig(backend=WriterBackend.BUILTIN)


@pytest.fixture
def photo(samples, tmp_path):
    return writable_copy(samples / "jpg" / "gps" / "DSCN0010.jpg", tmp_path / "photos")


def test_backup_next_to_file_keeps_the_first_original(photo):
    original = photo.read_bytes()
    [r] = write_gps([photo], 1.0, 2.0, config=BUILTIN)
    assert r.value.backup == photo.with_name("DSCN0010.jpg_original")
    write_gps([photo], 3.0, 4.0, config=BUILTIN)
    assert r.value.backup.read_bytes() == original  # the second write did not overwrite it


def test_backup_folder_mirrors_the_path(photo, tmp_path):
    config = WriteConfig(
        backend=WriterBackend.BUILTIN, backup=BackupMode.FOLDER, backup_dir=tmp_path / "bak"
    )
    [r] = write_gps([photo], 1.0, 2.0, config=config)
    assert r.value.backup.is_relative_to(tmp_path / "bak")
    assert (
        r.value.backup.name == photo.name and not photo.with_name(photo.name + "_original").exists()
    )
    with pytest.raises(ValueError, match="backup_dir"):
        WriteConfig(backup=BackupMode.FOLDER)


def test_undo_restores_the_last_batch_exactly(photo, samples, tmp_path):
    other = writable_copy(samples / "tiff" / "Tless0.tiff", tmp_path / "photos")
    write_gps([photo, other], 5.0, 6.0, config=BUILTIN)
    before = {p: p.read_bytes() for p in (photo, other)}
    os.utime(photo, (1_000_000_000, 1_000_000_000))
    write_gps([photo, other], -7.0, -8.0, 100.0, config=BUILTIN)
    results = undo_last_batch()
    assert [r.value for r in results] == ["restored", "restored"]
    assert {p: p.read_bytes() for p in (photo, other)} == before
    assert photo.stat().st_mtime == 1_000_000_000  # the saved copy kept its time
    with pytest.raises(ValueError, match="nothing to undo"):
        undo_last_batch()


def test_undo_leaves_a_file_changed_since_alone(photo):
    write_gps([photo], 5.0, 6.0, config=BUILTIN)
    write_gps([photo], 7.0, 8.0, config=WriteConfig(backend=WriterBackend.BUILTIN))
    photo.write_bytes(photo.read_bytes() + b"edited elsewhere")
    [r] = undo_last_batch()
    assert r.error.kind is PhotoErrorKind.WRITE_FAILED and "changed since" in r.error.message
    assert photo.read_bytes().endswith(b"edited elsewhere")


def test_no_backup_means_no_undo(photo):
    config = WriteConfig(backend=WriterBackend.BUILTIN, backup=BackupMode.NONE)
    [r] = write_gps([photo], 5.0, 6.0, config=config)
    assert r.value.backup is None and not list(photo.parent.glob("*_original"))
    [u] = undo_last_batch()
    assert u.error.kind is PhotoErrorKind.NOTHING_TO_UNDO and "--no-backup" in u.error.message


def test_keep_mtime(photo):
    os.utime(photo, (1_000_000_000, 1_000_000_000))
    write_gps([photo], 1.0, 2.0, config=WriteConfig(backend=WriterBackend.BUILTIN, keep_mtime=True))
    assert photo.stat().st_mtime == 1_000_000_000
    write_gps([photo], 1.0, 3.0, config=BUILTIN)
    assert photo.stat().st_mtime > 1_000_000_000


def test_read_only_file_is_a_clear_error_and_untouched(photo):
    photo.chmod(0o444)
    before = photo.read_bytes()
    [r] = write_gps([photo], 1.0, 2.0, config=BUILTIN)
    assert r.error.kind is PhotoErrorKind.READ_ONLY and "chmod" in r.error.message
    assert photo.read_bytes() == before


def test_full_disk_is_a_clear_error_and_untouched(photo, monkeypatch):
    before = photo.read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safe_io.os, "fsync", no_space)
    [r] = write_gps([photo], 1.0, 2.0, config=BUILTIN)
    assert r.error.kind is PhotoErrorKind.DISK_FULL and "untouched" in r.error.message
    assert photo.read_bytes() == before
    assert sorted(p.name for p in photo.parent.iterdir()) == ["DSCN0010.jpg"]  # no temp left


def test_batch_carries_on_after_a_bad_file(photo, tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 broken")
    results = write_gps([tmp_path / "missing.jpg", junk, photo], 1.5, 2.5, config=BUILTIN)
    assert results[0].error.kind is PhotoErrorKind.NOT_FOUND
    assert results[1].error.kind is PhotoErrorKind.CORRUPT
    assert results[2].ok and read_gps(photo).lat == pytest.approx(1.5)


def test_bad_positions_are_refused_before_any_file_is_touched():
    with pytest.raises(ValueError, match="swap"):
        check_position(120.0, 10.0)
    with pytest.raises(ValueError, match="longitude"):
        check_position(10.0, 200.0)
    with pytest.raises(ValueError, match="finite"):
        check_position(float("nan"), 1.0)


@pytest.mark.parametrize("name", ["a.png", "lossless.webp", "lossy.webp", "exif.webp"])
def test_png_and_webp_keep_their_image_data(tmp_path, name):
    path = tmp_path / name
    img = Image.new("RGB", (33, 17), (20, 120, 220))
    if name == "exif.webp":
        exif = Image.Exif()
        exif[0x010F] = "LocDiff camera"  # Make
        img.save(path, exif=exif)
    else:
        img.save(path, lossless=name.startswith("lossless"))
    before_pixels = np.asarray(Image.open(path).convert("RGB"))
    image_chunks = _image_chunks(path.read_bytes())
    [r] = write_gps([path], -41.2865, 174.7762, 10.0, config=BUILTIN)
    assert r.ok and r.value.method is WriteMethod.BUILTIN
    fix = read_gps(path)
    assert (fix.lat, fix.lon, fix.alt) == pytest.approx((-41.2865, 174.7762, 10.0), abs=1e-9)
    assert _image_chunks(path.read_bytes()) == image_chunks
    with Image.open(path) as reopened:
        assert np.array_equal(np.asarray(reopened.convert("RGB")), before_pixels)
        if name == "exif.webp":
            assert reopened.getexif()[0x010F] == "LocDiff camera"
    [removed] = remove_gps([path], BUILTIN)
    assert removed.ok and read_gps(path) is None


def _image_chunks(data):
    """The compressed image data: PNG IDAT chunks or the WebP VP8/VP8L chunk."""
    if data.startswith(b"\x89PNG"):
        return [data[i - 4 : i + 4] for i in range(len(data)) if data[i : i + 4] == b"IDAT"]
    for tag in (b"VP8 ", b"VP8L"):
        i = data.find(tag)
        if i >= 0:
            size = int.from_bytes(data[i + 4 : i + 8], "little")
            return data[i : i + 8 + size]
    raise AssertionError("no image chunk")


@pytest.mark.skipif(not heif_available(), reason="pillow-heif is not installed")
def test_heic_without_exiftool_gets_a_sidecar(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCDIFF_EXIFTOOL", "")
    path = tmp_path / "phone.heic"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(path)
    before = path.read_bytes()
    [r] = write_gps([path], 35.6586, 139.7454)
    assert r.ok and r.value.method is WriteMethod.SIDECAR and "sidecar" in r.warning
    assert r.value.written == tmp_path / "phone.heic.xmp"
    assert path.read_bytes() == before
    fix = read_gps(path)
    assert fix.source is GpsSource.SIDECAR and fix.lat == pytest.approx(35.6586, abs=1e-9)
    [undone] = undo_last_batch()
    assert undone.value.startswith("removed") and not r.value.written.exists()
    with pytest.raises(ValueError, match="exiftool is not installed"):
        write_gps([path], 1.0, 1.0, config=WriteConfig(backend=WriterBackend.EXIFTOOL))


@needs_exiftool
@pytest.mark.skipif(not heif_available(), reason="pillow-heif is not installed")
def test_heic_with_exiftool_is_written_in_place(tmp_path):
    assert HAS_EXIFTOOL
    path = tmp_path / "phone.heic"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(path)
    pixels = np.asarray(Image.open(path))
    [r] = write_gps([path], 35.6586, 139.7454, 40.0)
    assert r.ok and r.value.method is WriteMethod.EXIFTOOL
    fix = read_gps(path)
    assert fix.source is GpsSource.EXIF and fix.lon == pytest.approx(139.7454, abs=1e-7)
    assert np.array_equal(np.asarray(Image.open(path)), pixels)
    [removed] = remove_gps([path])
    assert removed.ok and read_gps(path) is None


def test_remove_with_a_sidecar_clears_it(photo):
    sidecar = photo.with_name(photo.name + ".xmp")
    from locdiff_core.photo import xmp

    sidecar.write_bytes(xmp.updated_sidecar(None, (1.0, 2.0, None)))
    [r] = remove_gps([photo], BUILTIN)
    assert r.ok and read_gps(photo) is None
    assert xmp.gps_from_packet(sidecar.read_bytes()) is None
