import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


class FakeHub:
    """A Hugging Face-like file server on 127.0.0.1 (the ``hub`` fixture).

    ``/<repo>/resolve/main/<file>`` answers with a redirect carrying ``X-Linked-Size`` and
    ``X-Linked-Etag`` (the sha256), as the Hub does; ``/blob/<repo>/<file>`` serves the bytes.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # "<repo>/<file>" -> bytes
        self.etag: str | None = None  # the announced sha256; None: the true one
        self.short_by = 0  # bytes left out of a body whose Content-Length promises them
        self.requests: list[str] = []  # paths asked for, in order
        self.url = ""


def _hub_handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            hub.requests.append(self.path)
            name = self.path.lstrip("/").replace("/resolve/main/", "/", 1)
            if "/resolve/main/" in self.path and name in hub.files:
                data = hub.files[name]
                sha = hub.etag or hashlib.sha256(data).hexdigest()
                self.reply(
                    302,
                    {
                        "Location": f"/blob/{name}",
                        "X-Linked-Size": str(len(data)),
                        "X-Linked-Etag": f'"{sha}"',
                        "Content-Length": "0",
                    },
                )
            elif self.path.startswith("/blob/") and self.path[6:] in hub.files:
                data = hub.files[self.path[6:]]
                self.reply(
                    200, {"Content-Length": str(len(data))}, data[: len(data) - hub.short_by]
                )
            else:
                self.reply(404, {"Content-Length": "0"})

    return Handler


@pytest.fixture
def hub():
    """A :class:`FakeHub` serving on 127.0.0.1: put bytes in ``hub.files["<repo>/<file>"]`` and
    point ``HF_ENDPOINT`` (or ``endpoint=``) at ``hub.url``. Nothing reaches the internet."""
    fake = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _hub_handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
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
