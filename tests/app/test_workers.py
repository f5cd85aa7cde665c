"""The prediction worker's plumbing (threads, chunks, per-photo errors, cancel, model errors)
with a real tiny checkpoint and the pixel-statistics stand-in for the encoder; and the
background loaders (thumbnails, EXIF)."""

import sys
import threading

import numpy as np
import pytest
from app_helpers import make_broken, make_photos, pixel_embedder_factory

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtCore", reason="Qt cannot load on this machine")

from app.loaders import ExifReader, ThumbnailLoader  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.workers import DENSITY_SIZE, ModelError, PredictionController  # noqa: E402


class Recorder:
    def __init__(self, controller):
        w = controller.worker
        self.status, self.predicted, self.failed, self.finished = [], [], [], []
        w.model_status.connect(lambda s, t: self.status.append((s, t)))
        w.predicted.connect(lambda j, k, p: self.predicted.append((k, p)))
        w.failed.connect(lambda j, k, m: self.failed.append((k, m)))
        w.finished.connect(lambda j, o, m: self.finished.append((j, o, m)))


@pytest.fixture
def controller(qtbot):
    made = []

    def make(factory=pixel_embedder_factory):
        c = PredictionController(factory)
        made.append(c)
        return c, Recorder(c)

    yield make
    for c in made:
        c.shutdown()


def test_predictions_arrive_per_photo_and_a_bad_file_fails_alone(
    qtbot, controller, gps_photos, fast_settings, tmp_path
):
    c, rec = controller()
    broken = make_broken(tmp_path / "broken")["text"]
    items = [(str(p), str(p)) for p in gps_photos] + [("bad", str(broken))]
    job = c.predict(items, fast_settings)
    assert c.busy
    qtbot.waitUntil(lambda: bool(rec.finished), timeout=60_000)
    assert rec.finished == [(job, "done", "9 of 10 photos predicted, 1 failed")]
    assert not c.busy
    assert rec.status[-1][0] == "ready" and "degree 8" in rec.status[-1][1]
    assert [k for k, _ in rec.predicted] == [str(p) for p in gps_photos]  # in order
    assert rec.failed == [("bad", rec.failed[0][1])] and "not" in rec.failed[0][1]
    for _, p in rec.predicted:
        assert -90 <= p.best[0] <= 90 and -180 <= p.best[1] <= 180
        assert p.samples.shape == (4, 2) and np.isfinite(p.samples).all()
        assert 0 <= p.radius50_km <= p.radius90_km
        assert p.candidates[0][:2] == p.best and sum(s for *_, s in p.candidates) <= 1.0 + 1e-9
        assert p.density.shape == DENSITY_SIZE and p.density.dtype == np.float32
    # the pixels differ, so do the embeddings and therefore the predictions
    assert len({p.best for _, p in rec.predicted}) > 1


def test_cancel_stops_within_a_chunk(qtbot, controller, fast_settings, tmp_path):
    c, rec = controller()
    photos = make_photos(tmp_path / "many", 120)
    c.predict([(str(p), str(p)) for p in photos], fast_settings)
    qtbot.waitUntil(lambda: bool(rec.predicted), timeout=60_000)
    c.cancel()
    qtbot.waitUntil(lambda: bool(rec.finished), timeout=30_000)
    (_, outcome, message) = rec.finished[0]
    assert outcome == "cancelled" and message.startswith("cancelled:")
    assert len(rec.predicted) < 120
    # a job queued after the cancel runs normally
    rec.finished.clear()
    c.predict([(str(photos[0]), str(photos[0]))], fast_settings)
    qtbot.waitUntil(lambda: bool(rec.finished), timeout=30_000)
    assert rec.finished[0][1] == "done"


def test_model_problems_are_messages(qtbot, controller, tmp_path, gps_photos):
    c, rec = controller()
    c.load_model(Settings(checkpoint=""))
    qtbot.waitUntil(lambda: bool(rec.status), timeout=10_000)
    assert rec.status[-1] == ("missing", "no model yet")
    garbage = tmp_path / "bad.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    job = c.predict([("k", str(gps_photos[0]))], Settings(checkpoint=str(garbage)))
    qtbot.waitUntil(lambda: bool(rec.finished), timeout=10_000)
    assert rec.status[-1][0] == "invalid" and str(garbage) in rec.status[-1][1]
    assert rec.finished[-1][:2] == (job, "failed") and rec.predicted == []


def test_encoder_errors_reach_the_window(qtbot, controller, fast_settings):
    def no_weights(identity, settings, download, progress):
        assert identity == {"name": "pixel-stats", "pretrained": "test", "dim": 6}
        raise ModelError("weights for pixel-stats not found; download them", kind="weights")

    c, rec = controller(no_weights)
    c.load_model(fast_settings)
    qtbot.waitUntil(lambda: bool(rec.status) and rec.status[-1][0] != "loading", timeout=20_000)
    assert rec.status[-1] == ("weights", "weights for pixel-stats not found; download them")


def test_default_embedder_explains_a_missing_encoder_module(fast_settings):
    import importlib.util

    from app.workers import default_embedder

    if importlib.util.find_spec("locdiff_core.image_encoder") is not None:
        pytest.skip("the image encoder is installed; its own tests cover it")
    with pytest.raises(ModelError, match="no image encoder"):
        default_embedder({"name": "x"}, fast_settings, False, lambda d, t: None)


def test_thumbnails_and_exif_in_the_background(qtbot, samples, tmp_path):
    thumbs = ThumbnailLoader(32)
    loaded, failed = {}, {}
    thumbs.loaded.connect(lambda k, img: loaded.__setitem__(k, img))
    thumbs.failed.connect(lambda k, m: failed.__setitem__(k, m))
    good = samples / "gps" / "DSCN0010.jpg"
    bad = make_broken(tmp_path)["truncated"]
    thumbs.request([("good", str(good))])
    thumbs.request([("good", str(good)), ("bad", str(bad))])  # "good" is loaded once
    assert not thumbs.idle
    qtbot.waitUntil(lambda: thumbs.idle, timeout=10_000)
    assert max(loaded["good"].width(), loaded["good"].height()) == 32
    assert "damaged" in failed["bad"] or "truncated" in failed["bad"]

    reader = ExifReader()
    results = []
    reader.read.connect(results.extend)
    reader.request([("gps", str(good)), ("readme", str(samples / "invalid" / "README"))])
    qtbot.waitUntil(lambda: reader.idle, timeout=10_000)
    by_key = {r.key: r for r in results}
    assert by_key["gps"].position == pytest.approx((43.4674, 11.8851), abs=1e-3)
    assert by_key["readme"].unusable and "not a JPEG" in by_key["readme"].error


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_background_threads_run_below_the_window(qtbot, controller):
    from PySide6.QtCore import QThreadPool

    from app.background import NICE_STEP, thread_nice
    from app.loaders import Task

    window_nice = thread_nice(threading.get_native_id())
    c, _ = controller()
    qtbot.waitUntil(lambda: c.worker.native_id is not None, timeout=60_000)
    expected = min(19, window_nice + NICE_STEP)
    assert thread_nice(c.worker.native_id) == expected
    pool = QThreadPool()
    task = Task(lambda _progress, _cancelled: threading.get_native_id(), pool).start()
    with qtbot.waitSignal(task.done, timeout=10_000) as done:
        pass
    assert thread_nice(done.args[0]) == expected
    assert thread_nice(threading.get_native_id()) == window_nice  # the window's is unchanged
    pool.waitForDone()


def test_loading_the_model_warms_the_prediction_path_up(
    qtbot, controller, fast_settings, monkeypatch
):
    """The first prediction's one-off work (loading the compiled SHDD kernel, torch's first
    calls) happens while the status still says "loading", not in the user's first batch."""
    from locdiff_core.shdd import fused

    calls = []
    real = fused.encode_fused

    def counting(*args, **kwargs):
        calls.append(threading.get_native_id())
        return real(*args, **kwargs)

    monkeypatch.setattr(fused, "encode_fused", counting)
    c, rec = controller()
    c.load_model(fast_settings)
    qtbot.waitUntil(lambda: bool(rec.status) and rec.status[-1][0] != "loading", timeout=60_000)
    assert rec.status[-1][0] == "ready"
    assert calls and set(calls) == {c.worker.native_id}  # the density path ran, in the worker


def test_a_file_that_cannot_be_opened_is_unusable_not_a_gps_note(tmp_path):
    from app.loaders import read_exif

    folder = tmp_path / "looks_like.jpg"  # a folder: opening it fails with an OSError
    folder.mkdir()
    result = read_exif("k", str(folder))
    assert result.unusable and result.position is None
    assert result.error == "is a folder, not a photo"
