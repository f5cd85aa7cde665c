"""The prediction worker: the one place in the app that talks to the model side of the core.

A :class:`PredictionWorker` lives in its own ``QThread`` and owns a
:class:`locdiff_core.pipeline.Pipeline` (the image encoder and the engines' heads: GeoCLIP's,
a checkpoint's LocDiffusion, or both, which adds the LocDiff-H hybrid); the window talks to it
only through :class:`PredictionController` (queued signals in, signals out), so the event loop
never waits for the model. Each photo is embedded once and every head reads that embedding.
Photos go through the pipeline in chunks of :data:`CHUNK`, so results appear as they come,
cancel answers within one sampler step, and the worker hands the GIL back after each result
(the window stays responsive with a thousand photos being predicted). Errors are messages: a
photo that cannot be read fails alone; a model that cannot be loaded fails the run with the
reason, and an engine the model cannot run is refused with the fix.

Without a checkpoint the model is GeoCLIP alone, ready once the CLIP ViT-L/14 (openai) weights
are on disk; :func:`fetch_encoder_weights` downloads those (or a checkpoint's encoder weights)
on a pool thread when the user asked for it.

The pipeline is made by a *pipeline factory* (default: :func:`default_pipeline`, which is
``Pipeline.load``); tests pass one that builds a ``Pipeline`` from small deterministic parts.
A factory takes the :class:`~app.model.settings.Settings` and returns the pipeline, or raises
:class:`ModelError`, ``WeightsNotFoundError``, ``ValueError`` or ``OSError`` with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.model.model_info import (
    AUTO,
    BACKBONE,
    NO_MODEL,
    EncoderWanted,
    ModelInfo,
    ModelState,
    by_hand,
)
from app.model.photo import PhotoPrediction
from app.model.settings import Settings
from app.workers.background import LOW, lower_this_thread

CHUNK = 8  # photos embedded and then predicted together: results appear in steps of this
DENSITY_SIZE = (90, 180)  # (H, W) of the density kept per photo: 2 degree cells, 65 kB
_PROGRESS_EVERY_S = 0.1
log = logging.getLogger(__name__)


class ModelError(Exception):
    """The model cannot be used; ``kind`` says why (:class:`ModelState`: missing, weights or
    invalid); the message says how to fix it."""

    def __init__(self, message: str, kind: ModelState = ModelState.INVALID) -> None:
        super().__init__(message)
        self.kind = kind


# (settings, gallery_progress(points, total)) -> locdiff_core.pipeline.Pipeline
PipelineFactory = Callable[[Settings, Callable[[int, int], None]], object]


def default_pipeline(
    settings: Settings, gallery_progress: Callable[[int, int], None] | None = None
):
    """Every engine the settings' checkpoint allows (none: GeoCLIP alone), from local files;
    raises ``WeightsNotFoundError`` when the image encoder's weights are not on disk.
    ``gallery_progress(points, total)`` follows GeoCLIP's one-time gallery encoding."""
    try:
        from locdiff_core.pipeline import Pipeline
    except ImportError as exc:
        raise ModelError(
            f"this installation has no prediction pipeline (locdiff_core.pipeline: {exc}); "
            "reinstall locdiff"
        ) from exc
    weights = Path(settings.encoder_weights) if settings.encoder_weights else None
    return Pipeline.load(
        checkpoint=settings.checkpoint or None,
        encoder_weights=weights,
        device=settings.device,
        gallery_progress=gallery_progress,
    )


def _resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelError("the device is set to CUDA but no CUDA GPU is available; pick auto or cpu")
    return name


def predictor_config(settings: Settings):
    """The LocDiffusion :class:`~locdiff_core.predictor.PredictorConfig` of ``settings``."""
    from locdiff_core.diffusion import SamplerKind
    from locdiff_core.predictor import BestGuess, PredictorConfig

    return PredictorConfig(
        best_guess=BestGuess(settings.best_guess),
        num_samples=settings.num_samples,
        sampler=SamplerKind(settings.sampler),
        num_steps=settings.num_steps or None,
        cluster_radius_km=settings.cluster_radius_km,
        decode_radius_km=settings.decode_radius_km or None,
        batch_size=CHUNK,
    )


def pipeline_config(settings: Settings):
    """The :class:`~locdiff_core.pipeline.PipelineConfig` that ``settings`` ask for."""
    from locdiff_core.engines import Engine
    from locdiff_core.geoclip import RetrievalConfig
    from locdiff_core.pipeline import PipelineConfig

    return PipelineConfig(
        engine=None if settings.engine == AUTO else Engine(settings.engine),
        locdiff=predictor_config(settings),
        retrieval=RetrievalConfig(cluster_radius_km=settings.cluster_radius_km),
        hybrid_radius_km=settings.hybrid_radius_km,
        batch_size=CHUNK,
        density_size=DENSITY_SIZE if settings.density_map else None,
    )


def to_photo_prediction(p, model: str = "") -> PhotoPrediction:
    """A plain copy of a :class:`~locdiff_core.predictor.LocationPrediction` made by ``model``."""
    return PhotoPrediction(
        best=(float(p.best[0]), float(p.best[1])),
        centre=(float(p.centre[0]), float(p.centre[1])),
        candidates=tuple((float(c.lat), float(c.lon), float(c.share)) for c in p.candidates),
        radius50_km=float(p.radius50_km),
        radius90_km=float(p.radius90_km),
        samples=p.samples.astype("float64", copy=True),
        density=None if p.density is None else p.density.astype("float32"),
        engine=p.engine,
        model=model,
    )


def model_name(pipeline, path: str) -> str:
    """A loaded pipeline's model: ``run0: degree 8, ViT-L-14, with GeoCLIP``."""
    if pipeline.predictor is None:
        return "GeoCLIP on CLIP ViT-L/14 (openai)"
    cfg = pipeline.predictor.config
    encoder = (cfg.encoder or {}).get("name", "unknown encoder")
    geoclip = ", with GeoCLIP" if pipeline.geoclip is not None else ""
    return f"{Path(path).name}: degree {cfg.model.degree}, {encoder}{geoclip}"


def describe_pipeline(pipeline, path: str, device: str) -> str:
    """The status bar's name of a loaded pipeline."""
    return f"{model_name(pipeline, path)}, on {device}"


def wanted_weights(settings: Settings) -> EncoderWanted | None:
    """The encoder weights a download could fetch when loading failed for want of them: GeoCLIP's
    backbone without a checkpoint, else the checkpoint's encoder when it has a pretrained tag;
    None when the settings name a weights file of their own (the user fixes that path)."""
    if settings.encoder_weights:
        return None
    if not settings.checkpoint:
        return BACKBONE
    from locdiff_core.checkpoint import read_config

    try:
        identity = read_config(settings.checkpoint).encoder or {}
    except (ValueError, OSError):
        return None
    if identity.get("config") is not None or not identity.get("pretrained"):
        return None
    return EncoderWanted(str(identity["name"]), str(identity["pretrained"]))


@dataclass(frozen=True)
class PredictJob:
    job: int
    items: tuple[tuple[str, str], ...]  # (key, path) of the photos, in order
    settings: Settings


class PredictionWorker(QObject):
    """Owns the pipeline; runs in the controller's thread. Signals carry the job id."""

    model_status = Signal(str, str)  # a ModelState value, text
    model_info = Signal(object)  # ModelInfo, sent before each final model_status
    progress = Signal(int, float, str)  # job, fraction done 0..1, text
    predicted = Signal(int, str, object)  # job, key, PhotoPrediction
    failed = Signal(int, str, str)  # job, key, message
    finished = Signal(int, str, str)  # job, outcome ("done", "cancelled", "failed"), message
    warmed = Signal()  # the model side (torch) is imported

    def __init__(self, pipeline_factory: PipelineFactory | None, is_cancelled) -> None:
        super().__init__()
        self._factory = pipeline_factory or default_pipeline
        self._is_cancelled = is_cancelled  # (job) -> bool, safe to call from this thread
        self._model_key: tuple | None = None
        self._pipeline = None
        self._model_name = ""  # model_name() of the loaded pipeline
        self._last_gallery_report = 0.0
        self.native_id: int | None = None  # the thread's id once it runs (for tests)

    @Slot()
    def warm_up(self) -> None:
        """Import the model side now, so the first prediction starts at once."""
        lower_this_thread()
        self.native_id = threading.get_native_id()
        import torch

        import locdiff_core.pipeline  # noqa: F401

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the window
        self.warmed.emit()

    @Slot(object)
    def load(self, settings: Settings) -> None:
        with contextlib.suppress(ModelError):  # _ensure_model reported it
            self._ensure_model(settings)

    def _ensure_model(self, settings: Settings) -> None:
        path = settings.checkpoint
        key = (path, self._checkpoint_mtime(path), settings.encoder_weights, settings.device)
        if key == self._model_key:
            return
        what = f"the model from {path}" if path else "GeoCLIP (CLIP ViT-L/14 and GeoCLIP's heads)"
        self.model_status.emit(ModelState.LOADING, f"loading {what}…")
        pipeline, device = self._load_pipeline(settings)
        self._pipeline, self._model_key = pipeline, key
        self._model_name = model_name(pipeline, path)
        self._warm_model(settings)
        engines = tuple(e.value for e in pipeline.engines)
        self.model_info.emit(ModelInfo(engines, pipeline.default_engine.value))
        self.model_status.emit(ModelState.READY, describe_pipeline(pipeline, path, device))

    def _checkpoint_mtime(self, path: str) -> int | None:
        """The checkpoint file's modification time (a new file under the same name reloads);
        None without a checkpoint. A checkpoint that is not there fails the load."""
        if not path:
            return None
        from locdiff_core.run_layout import model_file

        try:
            return os.stat(model_file(path)).st_mtime_ns
        except OSError:
            message = f"{path}: no checkpoint there; import another one"
            raise self._model_failed(ModelError(message, kind=ModelState.MISSING)) from None

    def _load_pipeline(self, settings: Settings):
        """The factory's pipeline and the device it runs on; failures become ModelErrors."""
        from locdiff_core.encoder_weights import WeightsNotFoundError

        try:
            device = _resolve_device(settings.device)
            return self._factory(settings, self._gallery_progress), device
        except ModelError as exc:
            raise self._model_failed(exc) from exc
        except WeightsNotFoundError as exc:
            first_run = not settings.checkpoint and not settings.encoder_weights
            if first_run:
                failure = ModelError("no model yet", kind=ModelState.MISSING)
            else:
                kind = ModelState.WEIGHTS if settings.checkpoint else ModelState.MISSING
                failure = ModelError(str(exc), kind=kind)
            raise self._model_failed(failure, wanted_weights(settings)) from exc
        except (ValueError, OSError, RuntimeError) as exc:
            raise self._model_failed(ModelError(str(exc))) from exc

    def _gallery_progress(self, done: int, total: int) -> None:
        """GeoCLIP's gallery is encoded once (about half a minute on a laptop CPU): say so."""
        now = time.monotonic()
        if done < total and now - self._last_gallery_report < _PROGRESS_EVERY_S:
            return
        self._last_gallery_report = now
        self.model_status.emit(
            ModelState.LOADING,
            f"preparing GeoCLIP's gallery, once: {done:,} of {total:,} places encoded…",
        )

    def _warm_model(self, settings: Settings) -> None:
        """Predict one made-up embedding through the path real photos take, while the status
        still says "loading": the first call loads the compiled SHDD kernel and initialises
        torch's operators, work that holds the GIL (a 300-400 ms stall of the window,
        measured) and that must not land in the middle of the user's first batch."""
        import numpy as np

        pipeline = self._pipeline
        dim = getattr(pipeline.encoder, "dim", None)
        if dim is None:
            return
        try:
            config = pipeline_config(settings)
            engine = config.engine if config.engine in pipeline.engines else None
            locdiff = dataclasses.replace(config.locdiff, num_steps=1, seed=0)
            config = dataclasses.replace(config, engine=engine, locdiff=locdiff)
            pipeline.predict_features(np.ones((1, dim), np.float32), config)
        except (ValueError, RuntimeError) as exc:  # the real run will report it, with the file
            log.warning("warming the model up failed: %s", exc)

    def _model_failed(self, exc: ModelError, wanted: EncoderWanted | None = None) -> ModelError:
        self._pipeline = self._model_key = None
        self.model_info.emit(dataclasses.replace(NO_MODEL, wanted=wanted))
        self.model_status.emit(exc.kind, str(exc))
        return exc

    @Slot(object)
    def run(self, job: PredictJob) -> None:
        if self._is_cancelled(job.job):
            self.finished.emit(job.job, "cancelled", "cancelled before it started")
            return
        try:
            self._ensure_model(job.settings)
            config = pipeline_config(job.settings)
            self._pipeline.resolve(config.engine)
        except (ModelError, ValueError) as exc:
            self.finished.emit(job.job, "failed", str(exc))
            return
        try:
            outcome = _Run(self, job, config).execute()
        except Exception as exc:  # a model bug must end the run with a message, not kill the thread
            self.finished.emit(job.job, "failed", f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(job.job, *outcome)


class _Run:
    """One prediction job: the pipeline's results reported as they come, with progress."""

    def __init__(self, worker: PredictionWorker, job: PredictJob, config) -> None:
        self.w, self.job, self.config = worker, job, config
        self.keys = [k for k, _ in job.items]
        self.total = len(self.keys)
        self.ok = self.bad = 0
        self._last_emit = 0.0

    def cancelled(self) -> bool:
        return self.w._is_cancelled(self.job.job)

    def execute(self) -> tuple[str, str]:
        paths = [p for _, p in self.job.items]
        results = self.w._pipeline.predict_paths(
            paths, self.config, progress=self._report, cancel=self.cancelled
        )
        for index, result in results:
            key = self.keys[index]
            if isinstance(result, Exception):
                message = getattr(result, "message", None) or str(result)
                self.w.failed.emit(self.job.job, key, message)
                self.bad += 1
            else:
                prediction = to_photo_prediction(result, self.w._model_name)
                self.w.predicted.emit(self.job.job, key, prediction)
                self.ok += 1
            time.sleep(0)  # hand the GIL to the window between results
        if self.cancelled():
            return "cancelled", f"cancelled: {self.ok} of {self.total} photos predicted"
        text = f"{self.ok} of {self.total} photos predicted"
        return "done", text + (f", {self.bad} failed" if self.bad else "")

    def _report(self, done: float, total: int) -> None:
        now = time.monotonic()
        if now - self._last_emit < _PROGRESS_EVERY_S:
            return
        self._last_emit = now
        fraction = min(1.0, done / max(total, 1))
        self.w.progress.emit(self.job.job, fraction, f"{self.ok + self.bad} of {total} photos")


@dataclass(frozen=True)
class FetchOutcome:
    """How a weights download ended: the file, or cancelled with ``kept`` bytes for a resume."""

    path: Path | None
    kept: int = 0


def fetch_encoder_weights(
    wanted: EncoderWanted, progress: Callable[[int, int], None], cancelled: Callable[[], bool]
) -> FetchOutcome:
    """Download ``wanted`` into LocDiff's weights folder (``locdiff_core.image_encoder``):
    from ``$HF_ENDPOINT`` or the Hugging Face hub, size and sha256 checked, resumed from what
    an earlier cancelled or broken download kept. For a pool thread
    (:class:`app.workers.loaders.Task`);
    raises ``ValueError`` saying what failed and how to bring the file by hand."""
    from locdiff_core.download import DownloadCancelled
    from locdiff_core.image_encoder import EncoderConfig, download_weights

    config = EncoderConfig(wanted.model, wanted.pretrained)
    try:
        return FetchOutcome(download_weights(config, progress, cancel=cancelled))
    except DownloadCancelled as exc:
        return FetchOutcome(None, exc.kept)
    except (OSError, ValueError) as exc:  # DownloadError included: the network or the disk
        raise ValueError(f"could not download {wanted.what}: {exc}\n\n{by_hand(wanted)}") from exc


class PredictionController(QObject):
    """The window's handle on the worker thread: start, cancel, load the model, shut down."""

    _load = Signal(object)
    _run = Signal(object)
    _warm = Signal()

    def __init__(self, pipeline_factory: PipelineFactory | None = None, parent=None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._cancelled_through = 0  # every job id up to this one is cancelled
        self._next_job = 0
        self.active: set[int] = set()
        self._thread = QThread()
        self._thread.setObjectName("locdiff-prediction")
        self.worker = PredictionWorker(pipeline_factory, self.is_cancelled)
        self.worker.moveToThread(self._thread)
        self._load.connect(self.worker.load)
        self._run.connect(self.worker.run)
        self._warm.connect(self.worker.warm_up)
        self.worker.finished.connect(self._on_finished)
        # The window's painting calls into Python once per cell and role, taking the GIL back
        # each time; a short switch interval bounds each wait while the worker runs Python.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self._thread.start(LOW)
        self._warm.emit()

    def is_cancelled(self, job: int) -> bool:
        with self._lock:
            return job <= self._cancelled_through

    @property
    def busy(self) -> bool:
        return bool(self.active)

    def load_model(self, settings: Settings) -> None:
        self._load.emit(settings)

    def predict(self, items: Sequence[tuple[str, str]], settings: Settings) -> int:
        """Queue a prediction of ``items`` ((key, path) pairs); returns the job id."""
        self._next_job += 1
        job = self._next_job
        self.active.add(job)
        self._run.emit(PredictJob(job, tuple(items), settings))
        return job

    def cancel(self) -> None:
        """Cancel every job queued or running (answers within one sampler step)."""
        with self._lock:
            self._cancelled_through = self._next_job

    @Slot(int, str, str)
    def _on_finished(self, job: int, _outcome: str, _message: str) -> None:
        self.active.discard(job)

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Cancel everything and stop the thread (call before the window goes away)."""
        self.cancel()
        self._thread.quit()
        self._thread.wait(timeout_ms)
