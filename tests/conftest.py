import contextlib
import hashlib
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if hasattr(os, "geteuid") and os.geteuid() == 0:
    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


TINY_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """An ``EncoderConfig`` for a tiny open_clip ViT (32 px input, 2 layers, D = 32): its model
    config JSON and a random full-CLIP weights file (safetensors) in a temporary folder."""
    import json

    import open_clip
    from safetensors.torch import save_file

    from locdiff_core.image_encoder import EncoderConfig

    folder = tmp_path_factory.mktemp("tiny_encoder")
    config = folder / "tiny-vit.json"
    config.write_text(json.dumps(TINY_VIT), encoding="utf-8")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.CLIP(**TINY_VIT)
    weights = folder / "tiny-vit.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    return EncoderConfig(model=str(config), pretrained=None, weights=weights, device="cpu")


class Request(NamedTuple):
    """One request to :class:`FakeHub`: its path, its ``Range`` header and the answer's status."""

    path: str
    range: str | None
    status: int


class FakeHub:
    """A Hugging Face-like file server on 127.0.0.1 (the ``hub`` fixture).

    ``/<repo>/resolve/main/<file>`` answers with a redirect to ``/blob/<repo>/<file>`` carrying
    ``X-Linked-Size`` and ``X-Linked-Etag`` (the sha256), as the Hub does; a blob serves the
    bytes with an ``ETag`` (their md5). While ``ranges`` is true a blob announces
    ``Accept-Ranges: bytes`` and answers ``Range: bytes=N-`` with 206, or 416 when N is at or
    past the end; otherwise it announces nothing and answers every request with the whole file
    (200). Other paths get 404. Each connection closes after one answer (HTTP/1.0), so a cut
    body ends short of its ``Content-Length``.

    ``linked = False`` leaves ``X-Linked-Size`` and ``X-Linked-Etag`` out of the redirect (a
    plain mirror that states no checksum); ``content_length = False`` sends blobs without
    ``Content-Length``, so a cut body looks complete. ``cut_after`` and ``hold_after`` act on
    the next blob body only, then go back to ``None``.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # "<repo>/<file>" -> bytes
        self.ranges = True  # serve byte ranges (and say so)
        self.announced_sha256: str | None = None  # in X-Linked-Etag; None: the true one
        self.wrong_bytes = False  # serve every byte XOR 0x5A (size and sha256 stay the true ones)
        self.cut_after: int | None = None  # send this many body bytes, then close the connection
        self.hold_after: int | None = None  # send this many, wait for release (30 s at most)
        self.release = threading.Event()
        self.content_type: str | None = None  # a blob's Content-Type; None: none sent
        self.linked = True  # the redirect states X-Linked-Size and X-Linked-Etag
        self.content_length = True  # blobs state their Content-Length
        self.requests: list[Request] = []  # in order
        self.url = ""

    def file_url(self, name: str) -> str:
        """The ``resolve`` URL of ``files[name]`` (``name`` is ``"<repo>/<file>"``)."""
        repo, _, file = name.rpartition("/")
        return f"{self.url}/{repo}/resolve/main/{file}"

    def blob_requests(self) -> list[tuple[str | None, int]]:
        """``(Range header, status)`` of each request for a blob, in order."""
        return [(r.range, r.status) for r in self.requests if r.path.startswith("/blob/")]


def _hub_handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def reply(self, status: int, headers: dict[str, str]) -> None:
            hub.requests.append(Request(self.path, self.headers.get("Range"), status))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()

        def do_GET(self):
            name = self.path.lstrip("/").replace("/resolve/main/", "/", 1)
            if "/resolve/main/" in self.path and name in hub.files:
                data = hub.files[name]
                sha = hub.announced_sha256 or hashlib.sha256(data).hexdigest()
                linked = {"X-Linked-Size": str(len(data)), "X-Linked-Etag": f'"{sha}"'}
                linked = linked if hub.linked else {}
                self.reply(302, {"Location": f"/blob/{name}", "Content-Length": "0", **linked})
            elif self.path.startswith("/blob/") and self.path[6:] in hub.files:
                self.blob(hub.files[self.path[6:]])
            else:
                self.reply(404, {"Content-Length": "0"})

        def blob(self, data: bytes) -> None:
            headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}
            if hub.content_type:
                headers["Content-Type"] = hub.content_type
            if hub.ranges:
                headers["Accept-Ranges"] = "bytes"
            if hub.wrong_bytes:
                data = bytes(b ^ 0x5A for b in data)
            wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if wanted is None or not hub.ranges:
                self.reply(200, {**headers, **self.length(data)})
                self.send_body(data)
                return
            start = int(wanted[1])
            if start >= len(data):
                self.reply(416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
                return
            part = data[start:]
            span = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self.reply(206, {**headers, "Content-Range": span, **self.length(part)})
            self.send_body(part)

        def length(self, data: bytes) -> dict[str, str]:
            return {"Content-Length": str(len(data))} if hub.content_length else {}

        def send_body(self, data: bytes) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if hub.cut_after is not None:
                    data, hub.cut_after = data[: hub.cut_after], None
                if hub.hold_after is not None:
                    held, hub.hold_after = hub.hold_after, None
                    self.wfile.write(data[:held])
                    self.wfile.flush()
                    hub.release.wait(30)
                    data = data[held:]
                self.wfile.write(data)

    return Handler


@pytest.fixture
def hub(monkeypatch):
    """A :class:`FakeHub` serving on 127.0.0.1: put bytes in ``hub.files["<repo>/<file>"]`` and
    point ``HF_ENDPOINT`` (or ``endpoint=``) at ``hub.url``. Nothing reaches the internet.

    Its files are made-up bytes under real repository names, so the table of known files'
    checksums (``locdiff_core.encoder_weights.KNOWN_FILES``) is empty while it serves; a test
    may put entries in it."""
    from locdiff_core import encoder_weights

    monkeypatch.setattr(encoder_weights, "KNOWN_FILES", {})
    fake = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _hub_handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def vit_l14(tmp_path_factory):
    """A random CLIP ViT-L/14 image tower built as OpenAI's (QuickGELU), and its weights as an
    open_clip-format safetensors file: ``(tower, path)``. About 1.2 GB on disk, made once."""
    from safetensors.torch import save_file

    from locdiff_core.image_encoder import _architecture, _build_tower

    arch = _architecture("ViT-L-14", "openai")
    assert arch.quick_gelu
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        tower = _build_tower(arch).eval()
    path = tmp_path_factory.mktemp("vit_l14") / "vit-l-14-random.safetensors"
    save_file({k: v.contiguous() for k, v in tower.state_dict().items()}, path)
    return tower, path


@pytest.fixture(scope="session")
def geoclip_cache(tmp_path_factory):
    """A cache folder in which GeoCLIP's real gallery (the installed wheel's) is encoded once
    per test session (about 30 s)."""
    from locdiff_core.geoclip import GeoCLIPHead

    folder = tmp_path_factory.mktemp("geoclip_cache")
    GeoCLIPHead.load(cache_dir=folder)
    return folder
