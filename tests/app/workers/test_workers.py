"""The prediction worker's plumbing (threads, chunks, per-photo errors, cancel, model errors)
with a real tiny checkpoint and the pixel-statistics stand-in for the encoder; every engine
(GeoCLIP on a made-up gallery, LocDiffusion, the hybrid) through the pipeline; and the
background loaders (thumbnails, EXIF)."""

import dataclasses
import sys
import threading

import numpy as np
import pytest
from app_helpers import (
    CITIES,
    backbone_on_disk,
    geoclip_pipeline,
    make_broken,
    make_photos,
    pixel_pipeline,
)

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtCore", reason="Qt cannot load on this machine")

from app.model.model_info import BACKBONE, ModelInfo  # noqa: E402
from app.model.settings import Settings  # noqa: E402
from app.workers.loaders import ExifReader, ThumbnailLoader  # noqa: E402
from app.workers.prediction import DENSITY_SIZE, ModelError, PredictionController  # noqa: E402
from locdiff_core.engines import Engine  # noqa: E402


class Recorder:
    def __init__(self, controller):
        w = controller.worker
        self.status, self.predicted, self.failed, self.finished = [], [], [], []
        self.info: list[ModelInfo] = []
        w.model_status.connect(lambda s, t: self.status.append((s, t)))
        w.model_info.connect(self.info.append)
        w.predicted.connect(lambda j, k, p: self.predicted.append((k, p)))
        w.failed.connect(lambda j, k, m: self.failed.append((k, m)))
        w.finished.connect(lambda j, o, m: self.finished.append((j, o, m)))


@pytest.fixture
def controller(qtbot):
    made = []

    def make(factory=pixel_pipeline):
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
    assert rec.info[-1] == ModelInfo(("locdiff",), "locdiff")  # no GeoCLIP head: LocDiffusion
    assert [k for k, _ in rec.predicted] == [str(p) for p in gps_photos]  # in order
    assert rec.failed == [("bad", rec.failed[0][1])] and "not" in rec.failed[0][1]
    for _, p in rec.predicted:
        assert -90 <= p.best[0] <= 90 and -180 <= p.best[1] <= 180
        assert p.samples.shape == (4, 2) and np.isfinite(p.samples).all()
        assert 0 <= p.radius50_km <= p.radius90_km
        # The best guess is the posterior's mode; the candidates are clusters of samples.
        assert sum(s for *_, s in p.candidates) <= 1.0 + 1e-9 and p.candidates[0][2] > 0
        assert p.density.shape == DENSITY_SIZE and p.density.dtype == np.float32
        assert p.engine is Engine.LOCDIFF
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
    qtbot.waitUntil(lambda: bool(rec.status) and rec.status[-1][0] != "loading", timeout=10_000)
    assert rec.status[-1] == ("missing", "no model yet")
    assert rec.info[-1] == ModelInfo(wanted=BACKBONE)  # the pretrained model can be fetched
    garbage = tmp_path / "bad.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    job = c.predict([("k", str(gps_photos[0]))], Settings(checkpoint=str(garbage)))
    qtbot.waitUntil(lambda: bool(rec.finished), timeout=10_000)
    assert rec.status[-1][0] == "invalid" and str(garbage) in rec.status[-1][1]
    assert rec.finished[-1][:2] == (job, "failed") and rec.predicted == []


def test_encoder_errors_reach_the_window(qtbot, controller, fast_settings):
    def no_weights(settings, gallery_progress):
        assert settings == fast_settings
        raise ModelError("weights for pixel-stats not found; download them", kind="weights")

    c, rec = controller(no_weights)
    c.load_model(fast_settings)
    qtbot.waitUntil(lambda: bool(rec.status) and rec.status[-1][0] != "loading", timeout=20_000)
    assert rec.status[-1] == ("weights", "weights for pixel-stats not found; download them")


def test_a_model_bug_ends_the_job_with_its_message_and_the_thread_lives(
    qtbot, controller, gps_photos, fast_settings
):
    class BrokenOnce:
        """The pixel pipeline whose first prediction raises, as a bug in the model would."""

        def __init__(self, pipeline):
            self.pipeline, self.raised = pipeline, False

        def __getattr__(self, name):
            return getattr(self.pipeline, name)

        def predict_paths(self, *args, **kwargs):
            if not self.raised:
                self.raised = True
                raise RuntimeError("the kernel fell over")
            return self.pipeline.predict_paths(*args, **kwargs)

    c, rec = controller(lambda settings, _progress=None: BrokenOnce(pixel_pipeline(settings)))
    outcome, preds = run_job(qtbot, c, rec, gps_photos[:1], fast_settings)
    assert outcome == ("failed", "RuntimeError: the kernel fell over") and preds == []
    outcome, preds = run_job(qtbot, c, rec, gps_photos[:1], fast_settings)
    assert outcome[0] == "done" and len(preds) == 1  # the same worker thread goes on


def test_the_gallery_encoding_is_shown_while_the_model_loads(qtbot, controller, fast_settings):
    def encoding_first(settings, gallery_progress):
        for done in (0, 50_000, 100_000):  # as GeoCLIPHead.load reports a cold cache
            gallery_progress(done, 100_000)
        return geoclip_pipeline(settings)

    c, rec = controller(encoding_first)
    c.load_model(fast_settings)
    qtbot.waitUntil(lambda: bool(rec.status) and rec.status[-1][0] == "ready", timeout=20_000)
    shown = [text for state, text in rec.status if state == "loading"]
    assert "preparing GeoCLIP's gallery, once: 100,000 of 100,000 places encoded…" in shown


def test_default_pipeline_explains_a_missing_pipeline_module(fast_settings, monkeypatch):
    from app.workers.prediction import default_pipeline

    monkeypatch.setitem(sys.modules, "locdiff_core.pipeline", None)  # import fails
    with pytest.raises(ModelError, match="no prediction pipeline"):
        default_pipeline(fast_settings)


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
    assert by_key["readme"].unusable
    assert by_key["readme"].error == "not an image Pillow can read (the start of the file is text)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_background_threads_run_below_the_window(qtbot, controller):
    from PySide6.QtCore import QThreadPool

    from app.workers.background import NICE_STEP, thread_nice
    from app.workers.loaders import Task

    window_nice = thread_nice(threading.get_native_id())
    c, _ = controller()
    qtbot.waitUntil(lambda: c.worker.native_id is not None, timeout=60_000)
    expected = min(19, window_nice + NICE_STEP)
    assert thread_nice(c.worker.native_id) == expected
    pool = QThreadPool()
    task = Task(lambda _progress, _cancelled: threading.get_native_id(), pool)
    with qtbot.waitSignal(task.done, timeout=10_000) as done:
        task.start()  # started inside: a quick task must not report before anyone listens
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
    from app.workers.loaders import read_exif

    folder = tmp_path / "looks_like.jpg"  # a folder: opening it fails with an OSError
    folder.mkdir()
    result = read_exif("k", str(folder))
    assert result.unusable and result.position is None
    assert result.error == "is a folder, not a photo"


def run_job(qtbot, c, rec, photos, settings):
    """Predict ``photos`` with ``settings``; ((outcome, message), the predictions in order)."""
    rec.finished.clear()
    rec.predicted.clear()
    c.predict([(str(p), str(p)) for p in photos], settings)
    qtbot.waitUntil(lambda: bool(rec.finished), timeout=60_000)
    return rec.finished[-1][1:], [p for _, p in rec.predicted]


def near_a_city(point, degrees=0.2) -> bool:
    return any(abs(point[0] - a) < degrees and abs(point[1] - b) < degrees for a, b in CITIES)


def test_every_engine_predicts_and_auto_picks_the_hybrid(
    qtbot, controller, gps_photos, backbone_checkpoint
):
    c, rec = controller(geoclip_pipeline)
    base = Settings(
        checkpoint=str(backbone_checkpoint),
        num_samples=4,
        num_steps=2,
        tile_url="",
        hybrid_radius_km=20_000.0,  # every gallery place is near a sample: no fallback
    )
    made_by = {"auto": "hybrid", "geoclip": "geoclip", "locdiff": "locdiff", "hybrid": "hybrid"}
    for engine, expected in made_by.items():
        outcome, preds = run_job(
            qtbot, c, rec, gps_photos[:3], dataclasses.replace(base, engine=engine)
        )
        assert outcome == ("done", "3 of 3 photos predicted"), engine
        assert [p.engine for p in preds] == [expected] * 3, engine
        for p in preds:
            assert p.density.shape == DENSITY_SIZE
            assert sum(s for *_, s in p.candidates) <= 1.0 + 1e-9
            if expected != "locdiff":  # the answer is a gallery place
                assert near_a_city(p.best) and near_a_city(p.centre)
    assert rec.info[-1] == ModelInfo(("geoclip", "locdiff", "hybrid"), "hybrid")
    assert rec.status[-1][0] == "ready" and "with GeoCLIP" in rec.status[-1][1]
    # no gallery place within 1 km of LocDiffusion's samples: the hybrid says it fell back
    narrow = dataclasses.replace(base, engine="hybrid", hybrid_radius_km=1.0)
    outcome, preds = run_job(qtbot, c, rec, gps_photos[:2], narrow)
    assert outcome[0] == "done" and {p.engine for p in preds} == {Engine.LOCDIFF}


def test_without_a_checkpoint_geoclip_alone_is_ready(qtbot, controller, gps_photos):
    c, rec = controller(geoclip_pipeline)
    outcome, preds = run_job(qtbot, c, rec, gps_photos[:2], Settings(tile_url=""))
    assert outcome == ("done", "2 of 2 photos predicted")
    assert rec.info[-1] == ModelInfo(("geoclip",), "geoclip")
    assert rec.status[-1][1].startswith("GeoCLIP on CLIP ViT-L/14 (openai), on ")
    assert all(p.engine is Engine.GEOCLIP and near_a_city(p.best) for p in preds)
    assert all(p.samples.shape == (16, 2) for p in preds)  # the top gallery places


def test_an_engine_the_model_cannot_run_fails_the_job_with_the_fix(
    qtbot, controller, gps_photos, fast_settings
):
    c, rec = controller()  # LocDiffusion only
    hybrid = dataclasses.replace(fast_settings, engine="hybrid")
    outcome, preds = run_job(qtbot, c, rec, gps_photos[:1], hybrid)
    assert outcome[0] == "failed" and preds == []
    assert "engine hybrid needs" in outcome[1] and "this model offers locdiff" in outcome[1]


def test_the_real_pipeline_without_weights_offers_the_pretrained_model(
    qtbot, controller, backbone_checkpoint
):
    if backbone_on_disk():
        pytest.skip("CLIP ViT-L/14's weights are on this machine")
    c, rec = controller(None)  # the app's own pipeline (locdiff_core.pipeline.Pipeline.load)
    c.load_model(Settings(tile_url=""))
    qtbot.waitUntil(lambda: bool(rec.status) and rec.status[-1][0] != "loading", timeout=60_000)
    assert rec.status[-1] == ("missing", "no model yet")
    assert rec.info[-1] == ModelInfo(wanted=BACKBONE)
    # a checkpoint on ViT-L/14 whose encoder weights are absent: the same download fetches them
    c.load_model(Settings(checkpoint=str(backbone_checkpoint), tile_url=""))
    qtbot.waitUntil(lambda: rec.status[-1][0] not in ("loading", "missing"), timeout=60_000)
    assert rec.status[-1][0] == "weights" and "ViT-L-14" in rec.status[-1][1]
    assert rec.info[-1] == ModelInfo(wanted=BACKBONE)


def test_a_task_reports_byte_counts_beyond_two_gigabytes(qtbot):
    from app.workers.loaders import Task

    got = []
    task = Task(lambda progress, _cancelled: progress(3_000_000_000, 5_000_000_000))
    task.progress.connect(lambda done, total: got.append((done, total)))
    with qtbot.waitSignal(task.done, timeout=10_000):
        task.start()
    qtbot.waitUntil(lambda: bool(got), timeout=5_000)
    assert got == [(3_000_000_000, 5_000_000_000)]


def test_a_task_says_a_system_error_plainly(qtbot, tmp_path):
    from app.workers.loaders import Task

    folder = tmp_path / "out"
    folder.mkdir()

    def export(_progress, _cancelled):
        folder.joinpath("a.csv").open("r")  # not there: what a vanished export target raises

    task = Task(export)
    with qtbot.waitSignal(task.failed, timeout=10_000) as failed:
        task.start()
    [message] = failed.args
    assert message == f"{folder / 'a.csv'}: file not found while using it"
    assert "Errno" not in message


def test_the_settings_choose_locdiffusions_best_guess():
    from app.workers.prediction import pipeline_config
    from locdiff_core.predictor import BestGuess

    assert pipeline_config(Settings()).locdiff.best_guess is BestGuess.MODE
    cluster = pipeline_config(Settings(best_guess="cluster", cluster_radius_km=120.0)).locdiff
    assert cluster.best_guess is BestGuess.CLUSTER and cluster.cluster_radius_km == 120.0
