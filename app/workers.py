"""The prediction worker: the one place in the app that talks to the model side of the core.

A :class:`PredictionWorker` lives in its own ``QThread`` and owns the image encoder and the
:class:`locdiff_core.predictor.Predictor`; the window talks to it only through
:class:`PredictionController` (queued signals in, signals out), so the event loop never waits
for the model. Photos are embedded and predicted in small chunks, so results appear as they
come, cancel answers within one sampler step, and the worker hands the GIL back often (the
window stays responsive with a thousand photos being predicted). Errors are messages: a photo
that cannot be read fails alone; a model that cannot be loaded fails the run with the reason.

The encoder is made by an *embedder factory* (default: ``locdiff_core.image_encoder``); tests
pass a small deterministic one. An embedder is anything with
``embed_paths(paths, batch_size=, progress=, cancel=)`` yielding ``(index, vector | PhotoError)``.
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

from app.background import LOW, lower_this_thread
from app.session import PhotoPrediction
from app.settings import Settings

CHUNK = 8  # photos embedded and then predicted together: results appear in steps of this
DENSITY_SIZE = (90, 180)  # (H, W) of the density kept per photo: 2 degree cells, 65 kB
_PROGRESS_EVERY_S = 0.1
log = logging.getLogger(__name__)


class ModelError(Exception):
    """The model cannot be used; ``kind`` is "missing", "weights" (encoder weights absent,
    a download can fetch them) or "invalid"; the message says how to fix it."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


EmbedderFactory = Callable[[dict | None, Settings, bool, Callable[[int, int], None]], object]


def default_embedder(
    identity: dict | None, settings: Settings, download: bool, progress: Callable[[int, int], None]
):
    """The image encoder named by the checkpoint (``locdiff_core.image_encoder``)."""
    try:
        from locdiff_core.image_encoder import ImageEncoder, WeightsNotFoundError
    except ImportError as exc:
        raise ModelError(
            f"this installation has no image encoder (locdiff_core.image_encoder: {exc}); "
            "reinstall locdiff"
        ) from exc
    if identity is None:
        raise ModelError(
            "the checkpoint does not name the image encoder it was trained with; "
            "train it again with a current `locdiff train`"
        )
    weights = Path(settings.encoder_weights) if settings.encoder_weights else None
    try:
        return ImageEncoder.for_checkpoint(
            identity, weights=weights, device=settings.device, download=download, progress=progress
        )
    except WeightsNotFoundError as exc:
        raise ModelError(str(exc), kind="weights") from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"the image encoder could not be loaded: {exc}") from exc


def _resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelError("the device is set to CUDA but no CUDA GPU is available; pick auto or cpu")
    return name


def predictor_config(settings: Settings):
    """The :class:`~locdiff_core.predictor.PredictorConfig` that ``settings`` ask for."""
    from locdiff_core.diffusion import SamplerKind
    from locdiff_core.predictor import PredictorConfig

    return PredictorConfig(
        num_samples=settings.num_samples,
        sampler=SamplerKind(settings.sampler),
        num_steps=settings.num_steps or None,
        cluster_radius_km=settings.cluster_radius_km,
        decode_radius_km=settings.decode_radius_km or None,
        batch_size=CHUNK,
    )


def to_photo_prediction(p) -> PhotoPrediction:
    """A plain copy of a :class:`~locdiff_core.predictor.LocationPrediction`."""
    return PhotoPrediction(
        best=(float(p.best[0]), float(p.best[1])),
        centre=(float(p.centre[0]), float(p.centre[1])),
        candidates=tuple((float(c.lat), float(c.lon), float(c.share)) for c in p.candidates),
        radius50_km=float(p.radius50_km),
        radius90_km=float(p.radius90_km),
        samples=p.samples.astype("float64", copy=True),
        density=None if p.density is None else p.density.astype("float32"),
    )


@dataclass(frozen=True)
class PredictJob:
    job: int
    items: tuple[tuple[str, str], ...]  # (key, path) of the photos, in order
    settings: Settings
    allow_download: bool = False


class PredictionWorker(QObject):
    """Owns encoder and predictor; runs in the controller's thread. Signals carry the job id."""

    model_status = Signal(
        str, str
    )  # state ("loading", "ready", "missing", "weights", "invalid"), text
    progress = Signal(int, float, str)  # job, fraction done 0..1, text
    predicted = Signal(int, str, object)  # job, key, PhotoPrediction
    failed = Signal(int, str, str)  # job, key, message
    finished = Signal(int, str, str)  # job, outcome ("done", "cancelled", "failed"), message
    warmed = Signal()  # the model side (torch) is imported

    def __init__(self, embedder_factory: EmbedderFactory | None, is_cancelled) -> None:
        super().__init__()
        self._factory = embedder_factory or default_embedder
        self._is_cancelled = is_cancelled  # (job) -> bool, safe to call from this thread
        self._model_key: tuple | None = None
        self._predictor = None
        self._embedder = None
        self.native_id: int | None = None  # the thread's id once it runs (for tests)

    @Slot()
    def warm_up(self) -> None:
        """Import the model side now, so the first prediction (and distances) start at once."""
        lower_this_thread()
        self.native_id = threading.get_native_id()
        import torch

        import locdiff_core.predictor  # noqa: F401

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the window
        self.warmed.emit()

    @Slot(object, bool)
    def load(self, settings: Settings, allow_download: bool) -> None:
        with contextlib.suppress(ModelError):  # _ensure_model reported it
            self._ensure_model(settings, allow_download)

    def _ensure_model(self, settings: Settings, allow_download: bool) -> None:
        from locdiff_core.checkpoint import checkpoint_path

        path = settings.checkpoint
        if not path:
            raise self._model_failed(ModelError("no model yet", kind="missing"))
        try:
            mtime = os.stat(checkpoint_path(path)).st_mtime_ns
        except OSError:
            message = f"{path}: no checkpoint there; import another one"
            raise self._model_failed(ModelError(message, kind="missing")) from None
        key = (path, mtime, settings.encoder_weights, settings.device)
        if key == self._model_key:
            return
        self.model_status.emit("loading", f"loading the model from {path}…")
        try:
            from locdiff_core.predictor import Predictor

            device = _resolve_device(settings.device)
            predictor = Predictor.from_checkpoint(path, device)
            embedder = self._factory(
                predictor.config.encoder, settings, allow_download, self._download_progress
            )
        except ModelError as exc:
            raise self._model_failed(exc) from exc
        except (ValueError, OSError, RuntimeError) as exc:
            raise self._model_failed(ModelError(str(exc))) from exc
        self._predictor, self._embedder, self._model_key = predictor, embedder, key
        self._warm_model(settings)
        cfg = predictor.config
        encoder = (cfg.encoder or {}).get("name", "unknown encoder")
        self.model_status.emit(
            "ready", f"{Path(path).name}: degree {cfg.model.degree}, {encoder}, on {device}"
        )

    def _warm_model(self, settings: Settings) -> None:
        """Predict one made-up embedding through the path real photos take, while the status
        still says "loading": the first call loads the compiled SHDD kernel and initialises
        torch's operators, work that holds the GIL (a 300-400 ms stall of the window,
        measured) and that must not land in the middle of the user's first batch."""
        import numpy as np

        dim = self._predictor.config.model.dim_cond
        density = DENSITY_SIZE if settings.density_map else None
        try:
            config = dataclasses.replace(predictor_config(settings), num_steps=1, seed=0)
            for _ in self._predictor.iter_predict(
                np.ones((1, dim), np.float32), config, density_size=density
            ):
                pass
        except (ValueError, RuntimeError) as exc:  # the real run will report it, with the file
            log.warning("warming the model up failed: %s", exc)

    def _download_progress(self, done: int, total: int) -> None:
        self.model_status.emit(
            "loading", f"downloading the encoder weights… {_mb(done)} of {_mb(total)}"
        )

    def _model_failed(self, exc: ModelError) -> ModelError:
        self._predictor = self._embedder = self._model_key = None
        self.model_status.emit(exc.kind, str(exc))
        return exc

    @Slot(object)
    def run(self, job: PredictJob) -> None:
        if self._is_cancelled(job.job):
            self.finished.emit(job.job, "cancelled", "cancelled before it started")
            return
        try:
            self._ensure_model(job.settings, job.allow_download)
            config = predictor_config(job.settings)
        except (ModelError, ValueError) as exc:
            self.finished.emit(job.job, "failed", str(exc))
            return
        try:
            outcome = _Run(self, job, config).execute()
        except Exception as exc:  # a model bug must end the run with a message, not kill the thread
            self.finished.emit(job.job, "failed", f"prediction failed: {type(exc).__name__}: {exc}")
            return
        self.finished.emit(job.job, *outcome)


class _Run:
    """One prediction job: embed chunk by chunk, predict each chunk, report as results come."""

    def __init__(self, worker: PredictionWorker, job: PredictJob, config) -> None:
        self.w, self.job, self.config = worker, job, config
        self.keys = [k for k, _ in job.items]
        self.total = len(self.keys)
        self.embedded = 0
        self.finished = 0.0  # photos predicted or failed (fractional within a chunk)
        self.ok = self.bad = 0
        self._last_emit = 0.0
        self._start = time.monotonic()

    def cancelled(self) -> bool:
        return self.w._is_cancelled(self.job.job)

    def execute(self) -> tuple[str, str]:
        from locdiff_core.diffusion import CancelledError

        paths = [p for _, p in self.job.items]
        chunk: list[tuple[int, object]] = []
        try:
            for index, result in self.w._embedder.embed_paths(
                paths, batch_size=CHUNK, cancel=self.cancelled
            ):
                self.embedded += 1
                if isinstance(result, Exception):
                    self._fail(index, getattr(result, "message", None) or str(result))
                else:
                    chunk.append((index, result))
                if len(chunk) >= CHUNK:
                    self._predict(chunk)
                    chunk = []
                self._report()
                if self.cancelled():
                    break
            if chunk and not self.cancelled():
                self._predict(chunk)
        except CancelledError:
            pass
        if self.cancelled():
            return "cancelled", f"cancelled: {self.ok} of {self.total} photos predicted"
        text = f"{self.ok} of {self.total} photos predicted"
        return "done", text + (f", {self.bad} failed" if self.bad else "")

    def _predict(self, chunk: list[tuple[int, object]]) -> None:
        import numpy as np

        embeddings = np.stack([np.asarray(e, dtype=np.float32) for _, e in chunk])
        base = self.finished

        def step(done: int, total: int) -> None:
            self.finished = base + len(chunk) * done / max(total, 1)
            self._report()

        for i, pred in self.w._predictor.iter_predict(
            embeddings,
            self.config,
            density_size=DENSITY_SIZE if self.job.settings.density_map else None,
            progress=step,
            cancel=self.cancelled,
        ):
            self.w.predicted.emit(self.job.job, self.keys[chunk[i][0]], to_photo_prediction(pred))
            self.ok += 1
        self.finished = base + len(chunk)
        time.sleep(0)  # hand the GIL to the window between chunks

    def _fail(self, index: int, message: str) -> None:
        self.w.failed.emit(self.job.job, self.keys[index], message)
        self.bad += 1
        self.finished += 1

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._last_emit < _PROGRESS_EVERY_S:
            return
        self._last_emit = now
        fraction = min(1.0, 0.5 * (self.embedded + self.finished) / max(self.total, 1))
        text = f"{self.ok + self.bad} of {self.total} photos"
        self.w.progress.emit(self.job.job, fraction, text)


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n else "?"


class PredictionController(QObject):
    """The window's handle on the worker thread: start, cancel, load the model, shut down."""

    _load = Signal(object, bool)
    _run = Signal(object)
    _warm = Signal()

    def __init__(self, embedder_factory: EmbedderFactory | None = None, parent=None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._cancelled_through = 0  # every job id up to this one is cancelled
        self._next_job = 0
        self.active: set[int] = set()
        self._thread = QThread()
        self._thread.setObjectName("locdiff-prediction")
        self.worker = PredictionWorker(embedder_factory, self.is_cancelled)
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

    def load_model(self, settings: Settings, allow_download: bool = False) -> None:
        self._load.emit(settings, allow_download)

    def predict(
        self, items: Sequence[tuple[str, str]], settings: Settings, allow_download: bool = False
    ) -> int:
        """Queue a prediction of ``items`` ((key, path) pairs); returns the job id."""
        self._next_job += 1
        job = self._next_job
        self.active.add(job)
        self._run.emit(PredictJob(job, tuple(items), settings, allow_download))
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
