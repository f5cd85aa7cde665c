"""Resuming and cancelling downloads against a Hub-like HTTP server on 127.0.0.1 that serves
byte ranges (the ``ranged`` fixture): ``/resolve/<name>`` redirects with ``X-Linked-Size`` and
``X-Linked-Etag`` as the Hub does, ``/blob/<name>`` serves the bytes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from locdiff_core.download import DownloadCancelled, DownloadError, download_file

PAYLOAD = random.Random(0).randbytes(3 * (1 << 20) + 12_345)  # four read chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()
CUT = 1_500_000  # bytes sent before the connection is cut


class RangedServer:
    """A file server that serves ``Range: bytes=N-`` requests, and can be told to cut the
    connection after ``cut_after`` body bytes (once), to ignore ``Range``, not to announce
    ``Accept-Ranges``, or to serve wrong bytes. ``requests`` lists ``(path, Range, status)``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"w.bin": PAYLOAD}
        self.cut_after: int | None = None
        self.ignore_range = False
        self.accept_ranges = True
        self.wrong_bytes = False
        self.requests: list[tuple[str, str | None, int]] = []
        self.url = ""

    def file_url(self, name: str = "w.bin") -> str:
        return f"{self.url}/resolve/{name}"

    def blob_requests(self) -> list[tuple[str | None, int]]:
        return [(rng, status) for path, rng, status in self.requests if path.startswith("/blob/")]


def _handler(server: RangedServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            server.requests.append((self.path, self.headers.get("Range"), status))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if server.cut_after is not None and status in (200, 206):
                body, server.cut_after = body[: server.cut_after], None
            self.wfile.write(body)

        def do_GET(self):
            kind, _, name = self.path.lstrip("/").partition("/")
            if name not in server.files:
                self.reply(404, {"Content-Length": "0"})
            elif kind == "resolve":
                data = server.files[name]
                linked = {
                    "X-Linked-Size": str(len(data)),
                    "X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                }
                self.reply(302, {"Location": f"/blob/{name}", "Content-Length": "0", **linked})
            else:
                self.blob(server.files[name])

        def blob(self, data: bytes) -> None:
            etag = f'"{hashlib.md5(data).hexdigest()}"'
            headers = {"ETag": etag, **({"Accept-Ranges": "bytes"} if server.accept_ranges else {})}
            if server.wrong_bytes:
                data = bytes(b ^ 0x5A for b in data)
            wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if wanted is None or server.ignore_range:
                self.reply(200, {**headers, "Content-Length": str(len(data))}, data)
                return
            start = int(wanted[1])
            if start >= len(data):
                self.reply(416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
                return
            body = data[start:]
            span = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self.reply(
                206, {**headers, "Content-Range": span, "Content-Length": str(len(body))}, body
            )

    return Handler


@pytest.fixture
def ranged():
    """A :class:`RangedServer` on 127.0.0.1 serving ``w.bin`` (:data:`PAYLOAD`)."""
    fake = RangedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


def interrupted(ranged, dest, url=None):
    """Run a download whose connection is cut after :data:`CUT` bytes; the part stays."""
    ranged.cut_after = CUT
    with pytest.raises(DownloadError, match=r"received 1,500,000 of .* run the download again"):
        download_file(url or ranged.file_url(), dest)
    assert files_in(dest.parent) == ["w.bin.part", "w.bin.part.json"]


def test_an_interrupted_download_resumes_with_a_range_request(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    part = tmp_path / "w.bin.part"
    assert part.read_bytes() == PAYLOAD[:CUT]
    note = json.loads((tmp_path / "w.bin.part.json").read_text())
    assert note["url"] == ranged.file_url() and note["total"] == len(PAYLOAD)
    assert note["sha256"] == SHA

    seen = []
    assert download_file(ranged.file_url(), dest, progress=lambda d, t: seen.append((d, t))) == dest
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
            ranged.file_url(),
            dest,
            progress=lambda d, t: seen.append(d),
            cancel=lambda: len(seen) > 2,  # after two chunks (seen[0] is the start, 0)
        )
    assert isinstance(caught.value, DownloadError) and caught.value.kept == 2 << 20
    assert files_in(tmp_path) == ["w.bin.part", "w.bin.part.json"]

    seen.clear()
    download_file(ranged.file_url(), dest, progress=lambda d, t: seen.append(d))
    assert seen[0] == 2 << 20  # progress starts at the kept size
    assert ranged.blob_requests()[-1] == (f"bytes={2 << 20}-", 206)
    assert dest.read_bytes() == PAYLOAD and files_in(tmp_path) == ["w.bin"]


def test_an_exception_in_progress_aborts_and_keeps_the_part(tmp_path, ranged):
    dest = tmp_path / "w.bin"

    def interrupt(done, total):
        if done >= 1 << 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_file(ranged.file_url(), dest, progress=interrupt)
    assert (tmp_path / "w.bin.part").stat().st_size == 1 << 20 and not dest.exists()
    download_file(ranged.file_url(), dest)
    assert ranged.blob_requests()[-1] == (f"bytes={1 << 20}-", 206)
    assert dest.read_bytes() == PAYLOAD


def test_a_server_that_ignores_range_still_gives_the_right_file(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    ranged.ignore_range, ranged.accept_ranges = True, False
    download_file(ranged.file_url(), dest)
    assert ranged.blob_requests()[-1] == (f"bytes={CUT}-", 200)  # asked, got the whole file
    assert dest.read_bytes() == PAYLOAD and files_in(tmp_path) == ["w.bin"]


def test_a_server_that_cannot_resume_keeps_no_part(tmp_path, ranged):
    ranged.accept_ranges, ranged.cut_after = False, CUT
    with pytest.raises(DownloadError, match=r"received 1,500,000 .* nothing is kept"):
        download_file(ranged.file_url(), tmp_path / "w.bin")
    assert files_in(tmp_path) == []


def test_a_part_for_another_url_restarts_from_zero(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    other = random.Random(1).randbytes(2_000_000)
    ranged.files["other.bin"] = other
    interrupted(ranged, dest)
    download_file(ranged.file_url("other.bin"), dest)
    assert ranged.blob_requests()[-1] == (None, 200)  # no Range for the part of w.bin
    assert dest.read_bytes() == other and files_in(tmp_path) == ["w.bin"]


def test_a_part_of_a_file_since_changed_on_the_server_restarts(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    ranged.files["w.bin"] = changed = PAYLOAD[:-1000] + b"new end"  # another size and sha256
    download_file(ranged.file_url(), dest)
    assert ranged.blob_requests()[-2:] == [(f"bytes={CUT}-", 206), (None, 200)]
    assert dest.read_bytes() == changed and files_in(tmp_path) == ["w.bin"]


def test_a_part_started_for_another_sha256_restarts(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    with pytest.raises(DownloadError, match=r"sha256 .* expected 1{64}; the download is damaged"):
        download_file(ranged.file_url(), dest, sha256="1" * 64)
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
        download_file(ranged.file_url(), dest)
    assert files_in(tmp_path) == []  # no part, no note, nothing under dest
    download_file(ranged.file_url(), dest)
    assert ranged.blob_requests()[-1] == (None, 200)  # from zero
    assert dest.read_bytes() == PAYLOAD


def test_wrong_bytes_from_the_server_fail_the_checksum(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    ranged.wrong_bytes = True
    with pytest.raises(DownloadError, match=r"damaged and was removed"):
        download_file(ranged.file_url(), dest)
    assert files_in(tmp_path) == []


def test_a_416_for_a_complete_part_verifies_and_finishes(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    with open(tmp_path / "w.bin.part", "ab") as fh:  # as if stopped just before the rename
        fh.write(PAYLOAD[CUT:])
    seen = []
    download_file(ranged.file_url(), dest, progress=lambda d, t: seen.append(d))
    assert ranged.blob_requests()[-1] == (f"bytes={len(PAYLOAD)}-", 416)
    assert dest.read_bytes() == PAYLOAD and files_in(tmp_path) == ["w.bin"]
    assert seen == [len(PAYLOAD)]


def test_a_416_for_a_damaged_complete_part_restarts(tmp_path, ranged):
    dest = tmp_path / "w.bin"
    interrupted(ranged, dest)
    with open(tmp_path / "w.bin.part", "ab") as fh:
        fh.write(b"\0" * (len(PAYLOAD) - CUT))
    download_file(ranged.file_url(), dest)
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
        download_file(ranged.file_url(), dest)
    monkeypatch.undo()
    assert f"folder {tmp_path} " in str(caught.value) and "resume" in str(caught.value)
    assert not isinstance(caught.value, DownloadCancelled)
    assert (tmp_path / "w.bin.part").stat().st_size == written[0]
    download_file(ranged.file_url(), dest)
    assert ranged.blob_requests()[-1] == (f"bytes={written[0]}-", 206)
    assert dest.read_bytes() == PAYLOAD


def test_a_bad_sha256_argument_is_a_value_error(tmp_path, ranged):
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        download_file(ranged.file_url(), tmp_path / "w.bin", sha256="abc")
    assert files_in(tmp_path) == []
