"""Helpers for the app tests.

``PixelStatsEmbedder`` computes real features from the pixels (channel means and spreads of a
small thumbnail), so predictions differ per photo; it exists to test the worker's plumbing
(threads, chunks, errors, cancel, responsiveness), NOT the image encoder, whose own tests live
with ``locdiff_core.image_encoder``.
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

    def embed_paths(self, paths, batch_size=32, num_workers=0, progress=None, cancel=None):
        self.calls += 1
        for i, path in enumerate(paths):
            if cancel is not None and cancel():
                return
            try:
                px = np.asarray(thumbnail(path, 16), dtype=np.float32) / 255.0
            except PhotoError as exc:
                yield i, exc
                continue
            flat = px.reshape(-1, 3)
            yield i, np.concatenate([flat.mean(0), flat.std(0)]) * 4.0 - 1.0
            if progress is not None:
                progress(i + 1, len(paths))


def pixel_embedder_factory(identity, settings, download, progress):
    return PixelStatsEmbedder()


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

    def open_photos(self):
        return []

    def open_folder(self):
        return None

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
