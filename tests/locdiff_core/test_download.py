"""Downloads against a Hugging Face-like HTTP server on 127.0.0.1 (never the internet)."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from locdiff_core.download import DownloadError, download_file, hf_file_url
from locdiff_core.image_encoder import EncoderConfig, download_weights, find_weights

REPO = "timm/vit_base_patch32_clip_224.openai"
PAYLOAD = bytes(range(256)) * 10_000  # 2.5 MB, three read chunks


class Hub(BaseHTTPRequestHandler):
    """``/<repo>/resolve/main/<file>`` answers with a redirect carrying X-Linked-Size and
    X-Linked-Etag, as the Hub does, and ``/blob/<file>`` serves the bytes."""

    files: ClassVar[dict[str, bytes]] = {}
    etag: str | None = None  # announced sha256; None: the true one
    short_by = 0  # bytes left out of the body while Content-Length promises them
    requests: ClassVar[list[str]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        prefix = f"/{REPO}/resolve/main/"
        if self.path.startswith(prefix) and self.path[len(prefix) :] in self.files:
            data = self.files[self.path[len(prefix) :]]
            self.send_response(302)
            self.send_header("Location", "/blob/" + self.path[len(prefix) :])
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("X-Linked-Etag", f'"{self.etag or hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/blob/") and self.path[6:] in self.files:
            data = self.files[self.path[6:]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) - self.short_by])
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def hub():
    Hub.files, Hub.etag, Hub.short_by, Hub.requests = {}, None, 0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_weights_download_from_the_endpoint_in_hf_endpoint(tmp_path, hub, monkeypatch):
    Hub.files["open_clip_model.safetensors"] = PAYLOAD
    monkeypatch.setenv("HF_ENDPOINT", hub)
    config = EncoderConfig("ViT-B-32", "openai", cache_dir=tmp_path)
    seen = []
    path = download_weights(config, lambda done, total: seen.append((done, total)))
    assert path == tmp_path / REPO / "open_clip_model.safetensors"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) >= 2
    assert find_weights(config) == path  # found offline from now on
    assert leftovers(tmp_path) == ["open_clip_model.safetensors"]


def test_the_pickle_file_is_fetched_when_the_repo_has_no_safetensors(tmp_path, hub):
    Hub.files["open_clip_pytorch_model.bin"] = PAYLOAD
    config = EncoderConfig("ViT-B-32", "openai", cache_dir=tmp_path)
    path = download_weights(config, endpoint=hub)
    assert path.name == "open_clip_pytorch_model.bin" and path.read_bytes() == PAYLOAD
    assert Hub.requests[0].endswith("/open_clip_model.safetensors")  # safetensors asked first


def test_a_repo_without_weights_is_a_clear_error(tmp_path, hub):
    with pytest.raises(DownloadError, match=r"holds none of open_clip_model.safetensors"):
        download_weights(EncoderConfig("ViT-B-32", "openai", cache_dir=tmp_path), endpoint=hub)
    assert leftovers(tmp_path) == []


def test_a_damaged_download_leaves_nothing_under_the_final_name(tmp_path, hub):
    Hub.files["w.bin"] = PAYLOAD
    dest = tmp_path / "w.bin"
    Hub.etag = "0" * 64
    with pytest.raises(DownloadError, match=r"sha256 .* the download is damaged"):
        download_file(hf_file_url(REPO, "w.bin", hub), dest)
    assert leftovers(tmp_path) == []
    Hub.etag, Hub.short_by = None, 1000
    with pytest.raises(DownloadError, match=r"broke off|received"):
        download_file(hf_file_url(REPO, "w.bin", hub), dest)
    assert leftovers(tmp_path) == []
    Hub.short_by = 0
    with pytest.raises(DownloadError, match=r"sha256"):  # a checksum the caller knows wins
        download_file(hf_file_url(REPO, "w.bin", hub), dest, sha256="1" * 64)
    assert leftovers(tmp_path) == []


def test_an_aborted_download_keeps_the_old_file(tmp_path, hub):
    Hub.files["w.bin"] = PAYLOAD
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"old")

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_file(hf_file_url(REPO, "w.bin", hub), dest, progress=interrupt)
    assert leftovers(tmp_path) == ["w.bin"] and dest.read_bytes() == b"old"


def test_unreachable_server_says_so(tmp_path):
    with pytest.raises(DownloadError, match=r"cannot connect.*HF_ENDPOINT"):
        download_file("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", timeout=5)
    assert leftovers(tmp_path) == []
