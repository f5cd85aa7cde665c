"""Resuming and cancelling downloads against the Hugging Face-like HTTP server on 127.0.0.1
(``hub`` in tests/conftest.py, here as the ``ranged`` fixture holding :data:`PAYLOAD`): it
serves byte ranges, and can cut the connection, ignore ``Range`` or serve wrong bytes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random

import pytest

from locdiff_core.download import DownloadCancelled, DownloadError, download_file

PAYLOAD = random.Random(0).randbytes(3 * (1 << 20) + 12_345)  # four read chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()
CUT = 1_500_000  # bytes sent before the connection is cut
NAME = "test/weights/w.bin"  # "<repo>/<file>" on the server


@pytest.fixture
def ranged(hub):
    """The Hugging Face-like server (``hub``, tests/conftest.py) holding :data:`PAYLOAD` as
    :data:`NAME`; it serves byte ranges unless told otherwise."""
    hub.files[NAME] = PAYLOAD
    return hub


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


def interrupted(ranged, dest, url=None):
    """Run a download whose connection is cut after :data:`CUT` bytes; the part stays."""
    ranged.cut_after = CUT
    with pytest.raises(DownloadError, match=r"received 1,500,000 of .* run the download again"):
        download_file(url or ranged.file_url(NAME), dest)
    assert files_in(dest.parent) == ["w.bin.part", "w.bin.part.json"]


def test_an_interrupted_download_resumes_with_a_range_request(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    part = tmp_path / "w.bin.part"
    assert part.read_bytes() == PAYLOAD[:CUT]
    note = json.loads((tmp_path / "w.bin.part.json").read_text())
    assert note["url"] == ranged.file_url(NAME) and note["total"] == len(PAYLOAD)
    assert note["sha256"] == SHA

    seen, url = [], ranged.file_url(NAME)
    assert download_file(url, dest, progress=lambda d, t: seen.append((d, t))) == dest
    assert ranged.blob_requests()[-1] == (f"bytes={CUT}-", 206)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == SHA
    assert seen[0] == (CUT, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert files_in(tmp_path) == ["w.bin"]


def test_a_cancelled_download_keeps_its_part_and_a_second_call_finishes(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    seen = []
    with pytest.raises(DownloadCancelled, match=r"cancelled; 2,097,152 of .* resume") as caught:
        download_file(
            ranged.file_url(NAME),
            dest,
            progress=lambda d, t: seen.append(d),
            cancel=lambda: len(seen) > 2,  # after two chunks (seen[0] is the start, 0)
        )
    assert isinstance(caught.value, DownloadError) and caught.value.kept == 2 << 20
    assert files_in(tmp_path) == ["w.bin.part", "w.bin.part.json"]

    seen.clear()
    download_file(ranged.file_url(NAME), dest, progress=lambda d, t: seen.append(d))
    assert seen[0] == 2 << 20  # progress starts at the kept size
    assert ranged.blob_requests()[-1] == (f"bytes={2 << 20}-", 206)
    assert dest.read_bytes() == PAYLOAD and files_in(tmp_path) == ["w.bin"]


def test_an_exception_in_progress_aborts_and_keeps_the_part(tmp_path, ranged):
    dest = tmp_path / "w.bin"

    def interrupt(done, total):
        if done >= 1 << 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_file(ranged.file_url(NAME), dest, progress=interrupt)
    assert (tmp_path / "w.bin.part").stat().st_size == 1 << 20 and not dest.exists()
    download_file(ranged.file_url(NAME), dest)
    assert ranged.blob_requests()[-1] == (f"bytes={1 << 20}-", 206)
    assert dest.read_bytes() == PAYLOAD


def test_a_server_that_ignores_range_still_gives_the_right_file(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    ranged.ranges = False  # no Accept-Ranges, and a Range request gets the whole file
    download_file(ranged.file_url(NAME), dest)
    assert ranged.blob_requests()[-1] == (f"bytes={CUT}-", 200)  # asked, got the whole file
    assert dest.read_bytes() == PAYLOAD and files_in(tmp_path) == ["w.bin"]


def test_a_server_that_cannot_resume_keeps_no_part(tmp_path, ranged):
    ranged.ranges, ranged.cut_after = False, CUT
    with pytest.raises(DownloadError, match=r"received 1,500,000 .* nothing is kept"):
        download_file(ranged.file_url(NAME), tmp_path / "w.bin")
    assert files_in(tmp_path) == []


def test_a_part_for_another_url_restarts_from_zero(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    name, other = "test/weights/other.bin", random.Random(1).randbytes(2_000_000)
    ranged.files[name] = other
    interrupted(ranged, dest)
    download_file(ranged.file_url(name), dest)
    assert ranged.blob_requests()[-1] == (None, 200)  # no Range for the part of w.bin
    assert dest.read_bytes() == other and files_in(tmp_path) == ["w.bin"]


def test_a_part_of_a_file_since_changed_on_the_server_restarts(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    ranged.files[NAME] = changed = PAYLOAD[:-1000] + b"new end"  # another size and sha256
    download_file(ranged.file_url(NAME), dest)
    assert ranged.blob_requests()[-2:] == [(f"bytes={CUT}-", 206), (None, 200)]
    assert dest.read_bytes() == changed and files_in(tmp_path) == ["w.bin"]


def test_a_part_started_for_another_sha256_restarts(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    with pytest.raises(DownloadError, match=r"sha256 .* expected 1{64}; the download is damaged"):
        download_file(ranged.file_url(NAME), dest, sha256="1" * 64)
    assert ranged.blob_requests()[-1] == (None, 200)  # the part was not resumed
    assert files_in(tmp_path) == []


def test_a_corrupt_part_fails_the_checksum_and_is_removed(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    part = tmp_path / "w.bin.part"
    damaged = bytearray(part.read_bytes())
    damaged[1000:1010] = b"x" * 10
    part.write_bytes(bytes(damaged))
    with pytest.raises(DownloadError, match=r"sha256 .* the download is damaged and was removed"):
        download_file(ranged.file_url(NAME), dest)
    assert files_in(tmp_path) == []  # no part, no note, nothing under dest
    download_file(ranged.file_url(NAME), dest)
    assert ranged.blob_requests()[-1] == (None, 200)  # from zero
    assert dest.read_bytes() == PAYLOAD


def test_wrong_bytes_from_the_server_fail_the_checksum(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    ranged.wrong_bytes = True
    with pytest.raises(DownloadError, match=r"damaged and was removed"):
        download_file(ranged.file_url(NAME), dest)
    assert files_in(tmp_path) == []


def test_a_416_for_a_complete_part_verifies_and_finishes(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    with open(tmp_path / "w.bin.part", "ab") as fh:  # as if stopped just before the rename
        fh.write(PAYLOAD[CUT:])
    seen = []
    download_file(ranged.file_url(NAME), dest, progress=lambda d, t: seen.append(d))
    assert ranged.blob_requests()[-1] == (f"bytes={len(PAYLOAD)}-", 416)
    assert dest.read_bytes() == PAYLOAD and files_in(tmp_path) == ["w.bin"]
    assert seen == [len(PAYLOAD)]


def test_a_416_for_a_damaged_complete_part_restarts(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    with open(tmp_path / "w.bin.part", "ab") as fh:
        fh.write(b"\0" * (len(PAYLOAD) - CUT))
    download_file(ranged.file_url(NAME), dest)
    assert ranged.blob_requests()[-2:] == [(f"bytes={len(PAYLOAD)}-", 416), (None, 200)]
    assert dest.read_bytes() == PAYLOAD and files_in(tmp_path) == ["w.bin"]


def test_a_full_disk_names_the_folder_and_keeps_a_resumable_part(tmp_path, ranged, monkeypatch):
    dest = tmp_path / "w.bin"
    real_write, written = os.write, []

    def write_once(fd, data):  # the first chunk lands, then the disk is full
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(real_write(fd, data))
        return written[-1]

    monkeypatch.setattr(os, "write", write_once)
    with pytest.raises(DownloadError, match="No space left") as caught:
        download_file(ranged.file_url(NAME), dest)
    monkeypatch.undo()
    assert f"folder {tmp_path} " in str(caught.value) and "resume" in str(caught.value)
    assert not isinstance(caught.value, DownloadCancelled)
    assert (tmp_path / "w.bin.part").stat().st_size == written[0]
    download_file(ranged.file_url(NAME), dest)
    assert ranged.blob_requests()[-1] == (f"bytes={written[0]}-", 206)
    assert dest.read_bytes() == PAYLOAD


def test_a_bad_sha256_argument_is_a_value_error(tmp_path, ranged):
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        download_file(ranged.file_url(NAME), tmp_path / "w.bin", sha256="abc")
    assert files_in(tmp_path) == []


def test_a_web_page_is_never_stored_as_the_file(tmp_path, ranged):
    ranged.content_type = "text/html; charset=utf-8"  # a sign-in page, a proxy's notice
    dest = tmp_path / "w.bin"
    with pytest.raises(DownloadError, match=r"answered with a web page \(text/html\)"):
        download_file(ranged.file_url(NAME), dest)
    assert files_in(tmp_path) == []
    ranged.content_type = "application/octet-stream"
    assert download_file(ranged.file_url(NAME), dest).read_bytes() == PAYLOAD


def test_a_redirect_from_https_to_http_is_refused():
    import urllib.request

    from locdiff_core.download import _RedirectNotes

    request = urllib.request.Request("https://huggingface.co/x/resolve/main/w.bin")
    with pytest.raises(DownloadError, match="from https to an unencrypted address; refused"):
        _RedirectNotes().redirect_request(request, None, 302, "Found", {}, "http://cdn.test/w.bin")
    kept = _RedirectNotes().redirect_request(request, None, 302, "Found", {}, "https://cdn.test/w")
    assert kept.full_url == "https://cdn.test/w"
