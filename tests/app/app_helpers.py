"""Helpers for the app tests.

``PixelStatsEmbedder`` computes real features from the pixels (channel means and spreads of a
small thumbnail), so predictions differ per photo; it exists to test the worker's plumbing
(threads, chunks, errors, cancel, responsiveness), NOT the image encoder, whose own tests live
with ``locdiff_core.image_encoder``. ``Pixel768Embedder`` spreads the same statistics into a
768-d raw feature, what GeoCLIP's head reads; ``made_up_geoclip`` is a GeoCLIP head on a small
made-up gallery (as ``tests/locdiff_core/geoclip_helpers.py`` builds one), so every engine runs
in a second. ``pipeline_factory`` assembles them into the worker's pipelines.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np

from locdiff_core.photo import PhotoError, thumbnail

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "testdata" / "exif-samples" / "jpg"
EMBED_DIM = 6


class PixelStatsEmbedder:
    """Test stand-in for the image encoder: mean and spread of each colour channel."""

    dim = EMBED_DIM

    def __init__(self) -> None:
        self.calls = 0

    def features(self, px: np.ndarray) -> np.ndarray:
        flat = px.reshape(-1, 3)
        return np.concatenate([flat.mean(0), flat.std(0)]) * 4.0 - 1.0

    def embed_paths(
        self, paths, batch_size=32, num_workers=0, progress=None, cancel=None, normalize=True
    ):
        self.calls += 1
        for i, path in enumerate(paths):
            if cancel is not None and cancel():
                return
            try:
                px = np.asarray(thumbnail(path, 16), dtype=np.float32) / 255.0
            except PhotoError as exc:
                yield i, exc
                continue
            raw = self.features(px).astype(np.float32)
            yield i, raw / np.linalg.norm(raw) if normalize else raw
            if progress is not None:
                progress(i + 1, len(paths))


class Pixel768Embedder(PixelStatsEmbedder):
    """The pixel statistics as a 768-d raw feature (CLIP ViT-L/14's width): features 0-5 hold
    them shifted to be positive, so the made-up GeoCLIP head sees them; the rest is small."""

    dim = 768

    def features(self, px: np.ndarray) -> np.ndarray:
        out = np.full(self.dim, 0.01, np.float32)
        out[:EMBED_DIM] = super().features(px) + 2.0
        return out


#: the made-up GeoCLIP gallery: 20 places around each city, gallery feature e_d for city d
CITIES = ((48.86, 2.35), (35.68, 139.69), (40.71, -74.0), (-33.87, 151.21), (30.04, 31.24))


def made_up_geoclip(logit_scale: float = 40.0):
    """A GeoCLIP head whose gallery is 20 places around each of :data:`CITIES`; a photo's
    probability spreads over the cities by its pixel statistics (features 0-4)."""
    import torch

    from locdiff_core.geo import latlon_to_xyz
    from locdiff_core.geoclip import GeoCLIPHead
    from locdiff_core.geoclip.gallery import Gallery
    from locdiff_core.geoclip.model import DIM_BACKBONE, DIM_FEATURE, ImageHead

    rng = np.random.default_rng(0)
    latlon = np.concatenate([np.asarray(c) + rng.uniform(-0.1, 0.1, (20, 2)) for c in CITIES])
    directions = np.repeat(np.arange(len(CITIES)), 20)
    features = torch.zeros(len(latlon), DIM_FEATURE)
    features[torch.arange(len(latlon)), torch.as_tensor(directions)] = 1.0
    t = torch.as_tensor(latlon)
    gallery = Gallery(latlon, latlon_to_xyz(t[:, 0], t[:, 1]), features)
    head = ImageHead()  # passes the first 512 (non-negative) raw features through
    with torch.no_grad():
        head[0].weight.copy_(torch.eye(DIM_BACKBONE))
        head[0].bias.zero_()
        head[2].weight.copy_(torch.eye(DIM_FEATURE, DIM_BACKBONE))
        head[2].bias.zero_()
    return GeoCLIPHead(head, logit_scale, gallery)


def pipeline_factory(embedder=PixelStatsEmbedder, geoclip=False, backbone_file=False):
    """A factory for the worker: the settings' checkpoint (if any) as LocDiffusion, ``embedder``
    as the image encoder, and with ``geoclip`` the made-up GeoCLIP head. Without a head or a
    checkpoint, or with ``backbone_file`` while CLIP ViT-L/14's weights are not on disk (in the
    test's private cache), it fails as the real pipeline does: weights not found."""

    def make(settings, gallery_progress=None):
        from locdiff_core.encoder_weights import WeightsNotFoundError
        from locdiff_core.image_encoder import EncoderConfig, find_weights
        from locdiff_core.pipeline import Pipeline
        from locdiff_core.predictor import Predictor

        if backbone_file:
            find_weights(EncoderConfig("ViT-L-14", "openai"))
        predictor = Predictor.from_checkpoint(settings.checkpoint) if settings.checkpoint else None
        head = made_up_geoclip() if geoclip else None
        if predictor is None and head is None:
            raise WeightsNotFoundError("no weights for encoder ViT-L-14 (pretrained 'openai')")
        return Pipeline(embedder(), predictor=predictor, geoclip=head)

    return make


def backbone_on_disk() -> bool:
    """Whether CLIP ViT-L/14's weights are somewhere this test can find them (the private
    cache is empty, but a Hugging Face cache on the machine may hold them)."""
    from locdiff_core.encoder_weights import WeightsNotFoundError
    from locdiff_core.image_encoder import EncoderConfig, find_weights

    try:
        find_weights(EncoderConfig("ViT-L-14", "openai"))
    except WeightsNotFoundError:
        return False
    return True


pixel_pipeline = pipeline_factory()  # LocDiffusion only; no model without a checkpoint
geoclip_pipeline = pipeline_factory(Pixel768Embedder, geoclip=True)  # GeoCLIP, + hybrid


class AnsweringPrompts:
    """Answers the window's questions as the test set them, and records what was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple] = []
        self.errors: list[tuple[str, str]] = []
        self.save_answer: str | None = None
        self.confirm_answer = True
        self.write_answer: tuple[bool, bool] = (True, True)
        self.coordinates_answer = None
        self.checkpoint_answer: str | None = None
        self.tracks_answer: list[str] = []
        self.unwritten_answer = "keep"
        self.session_answer: str | None = None
        self.pack_answer: str | None = None

    def open_photos(self):
        return []

    def open_folder(self):
        return None

    def unwritten(self, count):
        self.asked.append(("unwritten", count))
        return self.unwritten_answer

    def open_session(self):
        return self.session_answer

    def save_session(self):
        return self.session_answer

    def open_tracks(self):
        self.asked.append(("open_tracks",))
        return self.tracks_answer

    def open_map_pack(self):
        self.asked.append(("open_map_pack",))
        return self.pack_answer

    def open_checkpoint(self):
        self.asked.append(("open_checkpoint",))
        return self.checkpoint_answer

    def save_path(self, title, name_filter, suggested):
        self.asked.append(("save_path", title))
        return self.save_answer

    def coordinates(self, initial, count):
        self.asked.append(("coordinates", initial, count))
        return self.coordinates_answer

    def confirm_write(self, items, backup):
        self.asked.append(("confirm_write", [i.path for i in items], backup))
        return self.write_answer

    def confirm(self, title, text):
        self.asked.append(("confirm", title, text))
        return self.confirm_answer

    def settings(self, current):
        return None

    def error(self, title, text):
        self.errors.append((title, text))


def add_photos(qtbot, window, paths, timeout=20_000) -> None:
    """``window.add_paths(paths)``, then wait until the background walk has delivered them."""
    window.add_paths(paths)
    wait_added(qtbot, window, timeout)


def wait_added(qtbot, window, timeout=20_000) -> None:
    qtbot.waitUntil(lambda: window.finder.idle, timeout=timeout)


def wait_loaded(qtbot, window, timeout=20_000) -> None:
    qtbot.waitUntil(window.loading_done, timeout=timeout)


def wait_model(qtbot, window, timeout=30_000) -> None:
    qtbot.waitUntil(lambda: window.model_state != "loading", timeout=timeout)
    assert window.model_state == "ready", window.model_panel.text.text()


def predict_and_wait(qtbot, window, keys, timeout=60_000) -> None:
    assert window.predict(keys) is not None
    qtbot.waitUntil(lambda: not window.predictor.busy, timeout=timeout)


def map_state(qtbot, window) -> dict:
    """The map's state through ``evaluate("window.locdiffState()")``, which the placeholder and
    the real map both answer."""
    qtbot.waitUntil(window.map.is_ready, timeout=30_000)
    got = []
    window.map.evaluate("window.locdiffState()", got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10_000)
    return got[0]


def make_photos(folder: Path, count: int, size: tuple[int, int] = (48, 32)) -> list[Path]:
    """``count`` small JPEGs of different colours (real, decodable photos without GPS)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53 + 40) % 256)
        path = folder / f"photo{i:04d}.jpg"
        Image.new("RGB", size, colour).save(path, quality=80)
        paths.append(path)
    return paths


def make_broken(folder: Path) -> dict[str, Path]:
    """Files that look like photos but are not: text, empty, and a truncated JPEG."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "notes.jpg"
    text.write_text("this is not a photo")
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    full = folder / "whole.jpg"
    Image.effect_noise((256, 256), 64).convert("RGB").save(full, quality=95)
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(full.read_bytes()[:2000])
    full.unlink()
    return {"text": text, "empty": empty, "truncated": truncated}


def settle_heap() -> None:
    """Collect what the test session left behind (earlier windows, fixtures) and keep it out
    of later collections, as the app does with its start-up objects (MainWindow._warmed): a
    timing taken afterwards measures the app, not pytest's heap."""
    gc.collect()
    gc.freeze()


class LoopWatch:
    """Measures how long the Qt event loop goes without answering a 10 ms timer."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = 0.0
        self._timer = QTimer(interval=10)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        """Stops; the longest gap in seconds."""
        self._timer.stop()
        return max(self.gaps, default=0.0)


def drop(target, paths) -> bool:
    """Drag ``paths`` over the ``target`` widget and drop them, as a file manager would."""
    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    action, buttons = Qt.DropAction.CopyAction, Qt.MouseButton.NoButton
    enter = QDragEnterEvent(QPoint(50, 50), action, mime, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(50, 50), action, mime, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, event)
    return event.isAccepted()
