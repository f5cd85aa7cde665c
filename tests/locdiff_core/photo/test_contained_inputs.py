"""Inputs stay what and where they should be: FIFOs, sockets and devices are refused before they
are opened (a read of a FIFO would wait forever), and paths that lead out of their folder (``..``,
absolute ids, symbolic links) are told apart from the ones that stay in.

Every call that would block if the check were missing runs in a daemon thread joined with a
timeout, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from locdiff_core.photo import xmp
from locdiff_core.photo.errors import PhotoError, PhotoErrorKind
from locdiff_core.photo.gps import GpsSource, read_exif_tags, read_gps, read_gps_batch
from locdiff_core.photo.reading import find_photos, open_image, thumbnail, thumbnails
from locdiff_core.photo.safe_io import RootGuard, check_regular

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
DEV_NULL = Path("/dev/null")
PROMPTLY_S = 20.0


def promptly(fn: Callable, fifo: Path | None = None):
    """``fn()``'s value (or the exception it raised, returned) once it ends, failing the test if
    it is still running after PROMPTLY_S; a reader stuck on ``fifo`` is then released."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test
            box["value"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(PROMPTLY_S)
    if worker.is_alive():
        if fifo is not None:  # a writer end unblocks the stuck open() so the thread can end
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{fn} did not return: it opened a special file and waited on it")
    return box["value"]


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    return path


@pytest.fixture
def photo(tmp_path, samples) -> Path:
    """A copy of a sample JPEG whose EXIF holds a position (Arezzo)."""
    dst = tmp_path / "photos" / "DSCN0010.jpg"
    dst.parent.mkdir()
    shutil.copy(samples / "jpg" / "gps" / "DSCN0010.jpg", dst)
    return dst


def refused(result, kind: PhotoErrorKind = PhotoErrorKind.SPECIAL_FILE) -> PhotoError:
    assert isinstance(result, PhotoError), result
    assert result.kind is kind, result
    return result


def test_check_regular_names_each_kind_of_special_file(tmp_path, fifo, photo):
    check_regular(photo)  # a regular file passes
    assert refused(promptly(lambda: check_regular(fifo), fifo)).message.startswith(
        "is a FIFO (named pipe), not a photo"
    )
    device = refused(promptly(lambda: check_regular(DEV_NULL)))
    assert device.message.startswith("is a character device, not a photo")
    sock_path = tmp_path / "s.jpg"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        error = refused(promptly(lambda: check_regular(sock_path)))
        assert error.message.startswith("is a socket, not a photo")
    folder = refused(promptly(lambda: check_regular(tmp_path)), PhotoErrorKind.NOT_AN_IMAGE)
    assert folder.message == "is a folder, not a photo"
    refused(promptly(lambda: check_regular(tmp_path / "gone.jpg")), PhotoErrorKind.NOT_FOUND)
    link = tmp_path / "link.jpg"  # symbolic links are followed: what counts is the target
    link.symlink_to(fifo)
    refused(promptly(lambda: check_regular(link), fifo))


@pytest.mark.parametrize("reader", [open_image, thumbnail, read_gps, read_exif_tags])
def test_every_photo_reader_refuses_a_fifo_and_a_device_without_opening_them(fifo, reader):
    for special in (fifo, DEV_NULL):
        error = refused(promptly(lambda special=special: reader(special), fifo))
        assert error.path == special and "not a photo" in error.message


def test_batches_report_special_files_per_file_and_go_on(fifo, photo):
    gps = promptly(lambda: read_gps_batch([fifo, DEV_NULL, photo]), fifo)
    assert [r.error.kind if r.error else None for r in gps] == [
        PhotoErrorKind.SPECIAL_FILE,
        PhotoErrorKind.SPECIAL_FILE,
        None,
    ]
    assert gps[2].value.source is GpsSource.EXIF and 43.46 < gps[2].value.lat < 43.47
    thumbs = promptly(lambda: thumbnails([fifo, photo], 64), fifo)
    assert "FIFO (named pipe)" in thumbs[0].error.message and thumbs[1].ok


def test_a_fifo_in_place_of_a_sidecar_is_never_opened(photo):
    sidecar = xmp.sidecar_candidates(photo)[0]
    os.mkfifo(sidecar)
    fix = promptly(lambda: read_gps(photo), sidecar)  # not taken for a sidecar: EXIF is read
    assert not isinstance(fix, BaseException) and fix.source is GpsSource.EXIF
    error = refused(promptly(lambda: xmp.read_sidecar(sidecar), sidecar))
    assert error.message.startswith("is a FIFO (named pipe), not an XMP sidecar")


def test_gps_read_command_on_a_fifo_says_what_it_is(fifo, capsys):
    from trainer import cli

    assert promptly(lambda: cli.main(["gps", "read", str(fifo)]), fifo) == 1
    assert f"{fifo}: error: is a FIFO (named pipe), not a photo" in capsys.readouterr().out


def test_embed_refuses_a_fifo_or_a_device_as_its_csv(tmp_path, capsys):
    from trainer import cli

    table = tmp_path / "rows.csv"
    os.mkfifo(table)
    for source in (table, DEV_NULL):
        args = ["embed", "--csv", str(source), "--images", str(tmp_path), "--out", str(tmp_path)]
        assert promptly(lambda args=args: cli.main(args), table) == 2
        err = capsys.readouterr().err
        assert f"{source}: is a " in err and "not a CSV file" in err
    assert "FIFO (named pipe)" in promptly(lambda: _read_csv(table), table)


def _read_csv(table: Path) -> str:
    from trainer.location_csv import read_location_csv

    try:
        list(read_location_csv(table, table.parent))
    except ValueError as exc:
        return str(exc)
    return "read without an error"


def test_embed_records_a_fifo_among_the_images_and_goes_on(tmp_path, tiny_encoder):
    from locdiff_core.image_encoder import ImageEncoder
    from trainer.embed import EmbedConfig, build_dataset
    from trainer.manifest import latest, read_manifest

    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(images / "ok.jpg")
    os.mkfifo(images / "pipe.jpg")
    table = tmp_path / "rows.csv"
    table.write_text("IMG_ID,LAT,LON\npipe.jpg,1.0,2.0\nok.jpg,3.0,4.0\n")
    config = EmbedConfig(out=tmp_path / "ds", csv=table, images=images)
    encoder = ImageEncoder.load(tiny_encoder)
    promptly(lambda: build_dataset(config, encoder), images / "pipe.jpg")
    entries = latest(read_manifest(config.out))
    assert entries["ok.jpg"].outcome.value == "embedded"
    assert entries["pipe.jpg"].outcome.value == "unreadable"
    assert entries["pipe.jpg"].reason.startswith("is a FIFO (named pipe), not a photo")


def test_folder_walks_skip_special_files_and_links_out_of_the_root(tmp_path, photo, fifo):
    root = photo.parent
    os.mkfifo(root / "pipe.jpg")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(photo, outside / "far.jpg")
    (root / "far.jpg").symlink_to(outside / "far.jpg")
    (root / "near.jpg").symlink_to(photo)
    (root / "album").symlink_to(outside, target_is_directory=True)  # folder links: never
    skipped: list[tuple[Path, str]] = []
    found = find_photos([root], on_skip=lambda p, why: skipped.append((p, why)))
    assert found == [photo, root / "near.jpg"]
    assert skipped == [
        (root / "far.jpg", f"is a symbolic link to {outside / 'far.jpg'}, outside {root}")
    ]
    assert find_photos([root], allow_outside_root=True) == [
        photo,
        root / "far.jpg",
        root / "near.jpg",
    ]
    assert find_photos([fifo]) == [fifo]  # a file named on purpose is kept, and refused on read


def test_root_guard_tells_ids_that_leave_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "a.jpg").write_bytes(b"x")
    (outside / "x.jpg").write_bytes(b"x")
    (root / "out.jpg").symlink_to(outside / "x.jpg")
    (root / "in.jpg").symlink_to(root / "sub" / "a.jpg")
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "here").symlink_to(root / "sub", target_is_directory=True)
    guard = RootGuard(root)
    for inside in ("sub/a.jpg", "in.jpg", "here/a.jpg", "not/yet/there.jpg", "./sub/a.jpg"):
        assert guard.escape(inside) is None, inside
    assert guard.escape("/etc/passwd") == "is an absolute path"
    assert guard.escape(str(outside / "x.jpg")) == "is an absolute path"
    assert guard.escape("../outside/x.jpg") == "climbs out of the folder with '..'"
    assert guard.escape("sub/../../outside/x.jpg") == "climbs out of the folder with '..'"
    assert str(outside / "x.jpg") in guard.escape("out.jpg")
    assert str(outside / "x.jpg") in guard.escape("elsewhere/x.jpg")
    linked_root = tmp_path / "linked-root"  # the root itself may be a link
    linked_root.symlink_to(root, target_is_directory=True)
    assert RootGuard(linked_root).escape("in.jpg") is None
