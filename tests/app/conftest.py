"""Fixtures for the app tests: private settings/data/journal/cache folders, sample photos, tiny
checkpoints (one on the pixel statistics, one on CLIP ViT-L/14's identity for the hybrid), a
plain local HTTP server, and a window whose questions are answered by the test (helpers:
app_helpers.py). The Hugging Face-like server is ``hub`` (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest
import torch
from app_helpers import EMBED_DIM, SAMPLES, AnsweringPrompts, pixel_pipeline

# QtWebEngine must load before pytest-qt creates the QApplication (else it crashes); without
# Qt the display tests skip.
with contextlib.suppress(ImportError):
    import app.map.map_view  # noqa: F401


@pytest.fixture(autouse=True)
def private_folders(tmp_path, monkeypatch):
    """Settings, downloads and undo journals of every test in its own folders."""
    monkeypatch.setenv("LOCDIFF_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LOCDIFF_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOCDIFF_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LOCDIFF_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"test photos not found at {SAMPLES}")
    return SAMPLES


@pytest.fixture
def gps_photos(samples, tmp_path) -> list[Path]:
    """Copies of the nine geotagged samples (tests may write to them)."""
    folder = tmp_path / "gps"
    folder.mkdir()
    for photo in sorted((samples / "gps").glob("*.jpg")):
        shutil.copyfile(photo, folder / photo.name)  # writable copies (the originals are not)
    return sorted(folder.glob("*.jpg"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random-weight degree-8 CS-UNet for 6-dim embeddings, saved like a training run."""
    from locdiff_core.checkpoint import CheckpointConfig, save_checkpoint
    from locdiff_core.diffusion import DiffusionConfig
    from locdiff_core.nn import CSUNet, CSUNetConfig

    torch.manual_seed(0)
    model_cfg = CSUNetConfig(
        degree=8, dim_cond=EMBED_DIM, widths=(32,), dim_bottleneck=16, dropout=0.0
    )
    identity = {"name": "pixel-stats", "pretrained": "test", "dim": EMBED_DIM}
    config = CheckpointConfig(model_cfg, DiffusionConfig(num_steps=20), identity)
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(run, CSUNet(model_cfg), config)
    return run


@pytest.fixture(scope="session")
def backbone_checkpoint(tmp_path_factory) -> Path:
    """A random-weight degree-8 CS-UNet for 768-d embeddings whose encoder identity is CLIP
    ViT-L/14 openai (GeoCLIP's backbone), so a pipeline with it and GeoCLIP offers LocDiff-H."""
    from locdiff_core.checkpoint import CheckpointConfig, save_checkpoint
    from locdiff_core.diffusion import DiffusionConfig
    from locdiff_core.engines import GEOCLIP_BACKBONE
    from locdiff_core.nn import CSUNet, CSUNetConfig

    torch.manual_seed(0)
    model_cfg = CSUNetConfig(degree=8, dim_cond=768, widths=(32,), dim_bottleneck=16, dropout=0.0)
    config = CheckpointConfig(model_cfg, DiffusionConfig(num_steps=20), dict(GEOCLIP_BACKBONE))
    run = tmp_path_factory.mktemp("backbone-run")
    save_checkpoint(run, CSUNet(model_cfg), config)
    return run


@pytest.fixture
def fast_settings(tiny_checkpoint):
    from app.model.settings import Settings

    return Settings(checkpoint=str(tiny_checkpoint), num_samples=4, num_steps=3, tile_url="")


@pytest.fixture
def make_window(qtbot):
    """``make_window(settings)``: a shown main window predicting with the pixel-stats embedder
    (``pipeline_factory=None``: the app's own pipeline)."""
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    from app.main_window import MainWindow

    windows = []

    def make(settings=None, pipeline_factory=pixel_pipeline):
        from app.model.settings import Settings

        window = MainWindow(settings or Settings(tile_url=""), pipeline_factory=pipeline_factory)
        window.prompts = AnsweringPrompts()
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server (127.0.0.1) serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
