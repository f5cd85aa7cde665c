"""Broken files, made for real in a temporary folder, through the real read paths: each failure
is one plain message naming the file and the problem (never a library's raw words alone), with
the library's exception kept as its cause."""

from __future__ import annotations

import builtins
import errno
import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from photo_samples import HAS_EXIFTOOL
from PIL import Image, ImageFile

from locdiff_core.photo import read_gps, thumbnail
from locdiff_core.photo.errors import PhotoError, PhotoErrorKind, call_for_file, os_error
from locdiff_core.photo.gps import read_gps_batch
from locdiff_core.photo.photo_time import read_capture_time
from locdiff_core.photo.read_errors import damage_text
from locdiff_core.photo.reading import heif_available, open_image

CUT_SHORT = (
    "the file is cut short (truncated); it may still be copying, or the card was removed too early"
)
DAMAGED = (
    "the image data is damaged and cannot be decoded; copy the file again from the camera or a "
    "backup"
)


def failure(path: Path, read=thumbnail) -> PhotoError:
    result = call_for_file(path, read)
    assert not result.ok, f"{path} was read"
    assert str(result.error) == f"{path}: {result.error.message}"  # the message names the file
    return result.error


@pytest.fixture
def camera_jpeg(samples) -> bytes:
    return (samples / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()


def png_bytes(**save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 10)).save(buffer, "PNG", **save)
    return buffer.getvalue()


def test_a_jpeg_cut_short_says_so_wherever_it_is_cut(tmp_path, camera_jpeg):
    for cut in (20, len(camera_jpeg) // 3):  # in the header (Pillow: "Truncated File Read"), later
        path = tmp_path / f"IMG_{cut}.jpg"
        path.write_bytes(camera_jpeg[:cut])
        error = failure(path)
        assert error.kind is PhotoErrorKind.CORRUPT
        assert error.message == CUT_SHORT
        assert isinstance(error.__cause__, OSError)  # Pillow's own exception, for debugging
        assert "truncated" in str(error.__cause__).lower()
        assert "Truncated File Read" not in error.message
        with pytest.raises(PhotoError, match="cut short") as raised:
            open_image(path)
        assert raised.value.__cause__ is not None


def test_an_empty_file_and_a_text_file_named_jpg(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    notes = tmp_path / "notes.jpg"
    notes.write_text("Dear diary, today we walked to Arezzo.\n")
    for read in (thumbnail, read_gps):  # the list shows whichever reader answers first
        assert str(failure(empty, read)) == f"{empty}: the file is empty (0 bytes)"
        assert (
            str(failure(notes, read))
            == f"{notes}: not an image Pillow can read (the start of the file is text)"
        )
        assert failure(notes, read).kind is PhotoErrorKind.NOT_AN_IMAGE


def test_files_of_other_kinds_behind_a_photo_extension(tmp_path):
    cases = {
        "zeros.jpg": (b"\0" * 5000, "the file holds only zero bytes, no picture: the copy failed"),
        "page.jpg": (b"<!DOCTYPE html><html><body>404</body></html>", "a web page (HTML)"),
        "scan.jpg": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "the file is a PDF document"),
        "clip.jpg": (b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom", "the file is a video, not a photo"),
    }
    for name, (data, said) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert said in failure(tmp_path / name).message, name
    png = tmp_path / "really_a_png.jpg"  # a wrong extension alone is no problem
    png.write_bytes(png_bytes())
    assert thumbnail(png).size == (40, 30)


def test_a_png_with_a_broken_chunk(tmp_path):
    data = bytearray(png_bytes())
    data[29] ^= 0xFF  # the IHDR chunk's checksum
    header = tmp_path / "header.png"
    header.write_bytes(data)
    assert failure(header).message == (
        "the file is damaged (a checksum inside it does not match); "
        "copy the file again from the camera or a backup"
    )
    data = bytearray(png_bytes())
    idat = data.index(b"IDAT") + 4
    data[idat + 2 : idat + 8] = b"\xff" * 6  # the compressed pixels
    pixels = tmp_path / "pixels.png"
    pixels.write_bytes(data)
    assert failure(pixels).message == DAMAGED
    assert isinstance(failure(pixels).__cause__, OSError)
    exif_chunk = tmp_path / "metadata.png"
    data = png_bytes(exif=_exif_with_time())
    exif_chunk.write_bytes(renamed_chunk(data, b"eXIf", b"eXI\xff"))  # exifread trips on it
    assert failure(exif_chunk).message == (
        "it starts like a PNG file, but its header is damaged; "
        "copy the file again from the camera or a backup"
    )
    for read, what in ((read_gps, "its GPS position"), (read_capture_time, "its capture time")):
        error = failure(exif_chunk, read)
        assert error.message == f"its EXIF metadata is damaged, so {what} cannot be read"
        assert isinstance(error.__cause__, UnicodeDecodeError)


def renamed_chunk(png: bytes, old: bytes, new: bytes) -> bytes:
    """``png`` with chunk ``old`` renamed ``new``, its checksum made right again."""
    at = png.index(old)
    (length,) = struct.unpack(">I", png[at - 4 : at])
    body = png[at + 4 : at + 4 + length]
    crc = struct.pack(">I", zlib.crc32(new + body))
    return png[:at] + new + body + crc + png[at + 8 + length :]


def _exif_with_time() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0132] = "2024:05:01 10:00:00"
    return exif


@pytest.mark.skipif(not heif_available(), reason="pillow-heif is not installed")
def test_a_heic_cut_short(tmp_path):
    whole = tmp_path / "whole.heic"
    Image.new("RGB", (64, 48), (0, 0, 255)).save(whole, quality=50)
    data = whole.read_bytes()
    for cut in (40, len(data) // 2, len(data) - 10):  # in the boxes, in the picture data
        path = tmp_path / f"phone_{cut}.heic"
        path.write_bytes(data[:cut])
        assert failure(path).message == CUT_SHORT, cut


def test_a_heic_without_pillow_heif(tmp_path, monkeypatch):
    from locdiff_core.photo import reading

    path = tmp_path / "photo.heic"
    path.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 100)
    monkeypatch.setitem(reading._heif_state, "ok", False)
    monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
    monkeypatch.setattr(Image, "ID", [name for name in Image.ID if name != "HEIF"])
    assert str(failure(path)) == f"{path}: HEIC support is missing: pip install pillow-heif"
    hidden = tmp_path / "photo.jpg"  # HEIC content behind a .jpg name
    hidden.write_bytes(path.read_bytes())
    assert failure(hidden).message == "HEIC support is missing: pip install pillow-heif"
    assert failure(hidden).kind is PhotoErrorKind.UNSUPPORTED


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file, whatever its mode"
)
def test_a_file_without_read_permission(tmp_path, camera_jpeg):
    path = tmp_path / "IMG.jpg"
    path.write_bytes(camera_jpeg)
    path.chmod(0)
    try:
        for read in (thumbnail, read_gps):
            error = failure(path, read)
            assert error.kind is PhotoErrorKind.UNREADABLE
            assert error.message.startswith("permission denied while ")
            assert isinstance(error.__cause__, PermissionError)
    finally:
        path.chmod(0o644)


def test_a_refused_open_reads_as_permission_denied(tmp_path, monkeypatch, camera_jpeg):
    """The same message when the system refuses the open (as it does for root only on some
    network drives): the open itself is made to fail."""
    path = tmp_path / "IMG.jpg"
    path.write_bytes(camera_jpeg)
    real_open = builtins.open

    def refusing(file, *args, **kwargs):
        if Path(os.fsdecode(file)) == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
    for read, doing in ((thumbnail, "opening it"), (read_gps, "reading its GPS")):
        error = failure(path, read)
        assert error.message == (
            f"permission denied while {doing}; check the file's and its folder's permissions"
        )


def test_system_errors_in_plain_words():
    eio = os_error("IMG.jpg", OSError(errno.EIO, "Input/output error"), "reading it")
    assert eio.message == (
        "the disk reported an input/output error while reading it; the card or drive may be "
        "failing or was unplugged"
    )
    odd = os_error(
        "IMG.jpg",
        OSError(errno.EXDEV, "Invalid cross-device link"),
        "reading it",
        kind=PhotoErrorKind.UNREADABLE,
    )
    assert odd.kind is PhotoErrorKind.UNREADABLE
    assert odd.message == (
        "the system reported a problem while reading it: Invalid cross-device link (OSError, EXDEV)"
    )


def test_an_unknown_decoder_error_keeps_its_words_after_a_plain_sentence(
    tmp_path, monkeypatch, camera_jpeg
):
    path = tmp_path / "IMG_0042.jpg"
    path.write_bytes(camera_jpeg)

    def explode(self):
        raise RuntimeError("the codec fell over")

    monkeypatch.setattr(ImageFile.ImageFile, "load", explode)
    error = failure(path)
    assert error.message == (
        "the photo could not be decoded: Pillow stopped with an error it did not explain "
        "(RuntimeError: the codec fell over)"
    )
    assert isinstance(error.__cause__, RuntimeError)
    assert damage_text(zlib.error("Error -3 while decompressing data")) == DAMAGED


def test_the_gps_command_prints_the_plain_messages(tmp_path, capsys, camera_jpeg):
    from trainer import cli

    empty, notes, good = tmp_path / "empty.jpg", tmp_path / "notes.jpg", tmp_path / "good.jpg"
    empty.write_bytes(b"")
    notes.write_text("shopping list\n")
    good.write_bytes(camera_jpeg)
    assert cli.main(["gps", "read", str(empty), str(notes), str(good)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{empty}: error: the file is empty (0 bytes)"
    assert out[1] == f"{notes}: error: not an image Pillow can read (the start of the file is text)"
    assert out[2].startswith(f"{good}: 43.46")
    assert [r.ok for r in read_gps_batch([empty, good])] == [False, True]


@pytest.mark.skipif(not HAS_EXIFTOOL, reason="exiftool is not installed")
def test_exiftool_refusals_read_without_its_prefix_or_the_path(tmp_path):
    from locdiff_core.photo.writing import WriteConfig, WriterBackend, write_gps

    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo\n")
    config = WriteConfig(backend=WriterBackend.EXIFTOOL, journal_dir=tmp_path / "journal")
    [result] = write_gps([notes], 43.0, 11.0, config=config)
    assert result.error.message.startswith("exiftool refused: Not a valid JPG")
    assert "Error:" not in result.error.message and str(notes) not in result.error.message
    assert notes.read_text() == "not a photo\n"
