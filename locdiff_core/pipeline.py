"""Photos in, locations out: one image pipeline for the three engines (``locdiff_core.engines``).

A :class:`Pipeline` owns the frozen CLIP image encoder and the heads that read its features,
as a diffusers pipeline owns its parts: LocDiffusion's :class:`~locdiff_core.predictor.Predictor`
(a trained checkpoint), GeoCLIP's :class:`~locdiff_core.geoclip.GeoCLIPHead` (the installed
``geoclip`` wheel's weights), or both, which enables the LocDiff-H hybrid
(:mod:`locdiff_core.hybrid`). Each photo is decoded and embedded once; LocDiffusion reads the
unit-length embedding (what it was trained on), GeoCLIP the raw projected feature.

Per-photo problems (a file that is not an image, a damaged JPEG) come back as values
(:class:`~locdiff_core.photo.errors.PhotoError`) in the photo's place; one bad photo never stops
the batch. ``progress(done, total)`` counts photos (fractions while a batch samples);
``cancel()`` returning True stops between sampler steps and batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from locdiff_core.diffusion import CancelledError
from locdiff_core.encoder_identity import describe_encoder
from locdiff_core.engines import GEOCLIP_BACKBONE, Engine, best_engine, on_geoclip_backbone
from locdiff_core.geoclip import GeoCLIPHead, RetrievalConfig
from locdiff_core.hybrid import DEFAULT_RADIUS_KM, hybrid_predict
from locdiff_core.image_encoder import EncoderConfig, ImageEncoder, resolve_device
from locdiff_core.photo.errors import PhotoError
from locdiff_core.predictor import LocationPrediction, Predictor, PredictorConfig

ProgressFn = Callable[[float, int], None]


@dataclass(frozen=True)
class PipelineConfig:
    engine: Engine | None = None  # None: the best engine loaded (Pipeline.default_engine)
    locdiff: PredictorConfig = field(default_factory=PredictorConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    hybrid_radius_km: float = DEFAULT_RADIUS_KM
    batch_size: int = 16  # photos embedded, then predicted, together
    num_workers: int = 0  # photo-decoding processes (0: this one)
    density_size: tuple[int, int] | None = None  # (H, W) of each prediction's density, if any

    def validate(self) -> None:
        if self.batch_size < 1 or self.num_workers < 0:
            raise ValueError("batch_size must be >= 1 and num_workers >= 0")
        if not self.hybrid_radius_km > 0:
            raise ValueError(f"the hybrid radius must be positive, got {self.hybrid_radius_km}")
        self.locdiff.validate()
        self.retrieval.validate()


class Pipeline:
    """The image encoder and the engines' heads; see the module docstring."""

    def __init__(
        self,
        encoder,
        *,
        predictor: Predictor | None = None,
        geoclip: GeoCLIPHead | None = None,
    ) -> None:
        if predictor is None and geoclip is None:
            raise ValueError("a pipeline needs a LocDiffusion predictor, GeoCLIP's head or both")
        self.encoder = encoder  # anything with embed_paths(paths, ..., normalize=)
        self.predictor = predictor
        self.geoclip = geoclip

    @classmethod
    def load(
        cls,
        engine: Engine | None = None,
        *,
        checkpoint: str | Path | None = None,
        encoder_weights: Path | None = None,
        device: str = "auto",
        download: bool = False,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        cache_dir: Path | None = None,
        load_encoder: bool = True,
        gallery_progress: Callable[[int, int], None] | None = None,
        sha256: str | None = None,
    ) -> Pipeline:
        """The parts ``engine`` needs (``None``: every engine that ``checkpoint`` allows).

        ``encoder_weights`` is a local weights file of the backbone (open_clip format);
        without one the backbone's weights are looked for in the caches, and downloaded only
        with ``download`` (``progress(bytes, total)``; ``cancel()`` stops the download, keeping
        what arrived, and the gallery encoding; ``sha256``: what the downloaded weights file must
        have, for a server that announces none). ``load_encoder=False`` leaves the image
        encoder out (for :meth:`predict_features` on embeddings made earlier).
        ``gallery_progress(points, total)`` follows GeoCLIP's one-time gallery encoding. Raises
        ``ValueError`` (or :class:`~locdiff_core.encoder_weights.WeightsNotFoundError`) saying
        how to fix it.
        """
        if engine is not None and engine.needs_checkpoint and checkpoint is None:
            raise ValueError(
                f"--engine {engine.value} needs a LocDiffusion checkpoint (--checkpoint RUN_DIR); "
                "--engine geoclip predicts without one"
            )
        predictor = encoder = None
        identity: dict | None = dict(GEOCLIP_BACKBONE)
        if checkpoint is not None and engine is not Engine.GEOCLIP:
            predictor = Predictor.from_checkpoint(checkpoint, resolve_device(device))
            identity = predictor.config.encoder
            if engine is Engine.HYBRID and not on_geoclip_backbone(identity):
                raise ValueError(hybrid_refusal(checkpoint, identity))
            if load_encoder:
                encoder = ImageEncoder.for_checkpoint(
                    identity,
                    weights=encoder_weights,
                    device=device,
                    download=download,
                    progress=progress,
                    cache_dir=cache_dir,
                    cancel=cancel,
                    sha256=sha256,
                )
        wants_geoclip = engine in (Engine.GEOCLIP, Engine.HYBRID) or (
            engine is None and on_geoclip_backbone(identity)
        )
        geoclip = None
        if wants_geoclip:
            if encoder is None and load_encoder:
                backbone = EncoderConfig(
                    GEOCLIP_BACKBONE["name"],
                    GEOCLIP_BACKBONE["pretrained"],
                    encoder_weights,
                    device,
                    cache_dir,
                )
                encoder = ImageEncoder.load(
                    backbone, download=download, progress=progress, cancel=cancel, sha256=sha256
                )
            head_device = encoder.device if encoder is not None else resolve_device(device)
            geoclip = GeoCLIPHead.load(
                device=head_device, cache_dir=cache_dir, progress=gallery_progress, cancel=cancel
            )
        return cls(encoder, predictor=predictor, geoclip=geoclip)

    @property
    def engines(self) -> tuple[Engine, ...]:
        """The engines this pipeline can run."""
        out = []
        if self.geoclip is not None:
            out.append(Engine.GEOCLIP)
        if self.predictor is not None:
            out.append(Engine.LOCDIFF)
            if self.geoclip is not None:
                out.append(Engine.HYBRID)
        return tuple(out)

    @property
    def default_engine(self) -> Engine:
        return best_engine(self.predictor is not None, Engine.HYBRID in self.engines)

    def resolve(self, engine: Engine | None) -> Engine:
        """``engine``, or the default for ``None``; a ``ValueError`` if it is not loaded."""
        engine = self.default_engine if engine is None else Engine(engine)
        if engine not in self.engines:
            have = ", ".join(e.value for e in self.engines)
            need = {
                Engine.GEOCLIP: "GeoCLIP's head (the geoclip package) on CLIP ViT-L/14",
                Engine.LOCDIFF: "a LocDiffusion checkpoint",
                Engine.HYBRID: "a LocDiffusion checkpoint trained on CLIP ViT-L/14 (openai) "
                "and GeoCLIP's head",
            }[engine]
            raise ValueError(f"engine {engine.value} needs {need}; this model offers {have}")
        return engine

    def predict_features(
        self,
        raw,
        config: PipelineConfig = PipelineConfig(),
        *,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> list[LocationPrediction]:
        """Predictions for raw backbone features ``raw`` (``[N x D]``, the encoder's
        ``normalize=False`` output), in order. ``progress`` counts LocDiffusion's sampler
        steps; cancelling raises :class:`~locdiff_core.diffusion.CancelledError`."""
        config.validate()
        engine = self.resolve(config.engine)
        raw = torch.as_tensor(np.asarray(raw, dtype=np.float32))
        if engine is Engine.GEOCLIP:
            return self.geoclip.predict(raw, config.retrieval, density_size=config.density_size)
        unit = torch.nn.functional.normalize(raw, dim=-1)
        own_density = config.density_size if engine is Engine.LOCDIFF else None
        locdiff = [
            p
            for _, p in self.predictor.iter_predict(
                unit, config.locdiff, density_size=own_density, progress=progress, cancel=cancel
            )
        ]
        if engine is Engine.LOCDIFF:
            return locdiff
        return hybrid_predict(
            self.geoclip,
            raw,
            locdiff,
            config.retrieval,
            radius_km=config.hybrid_radius_km,
            density_size=config.density_size,
        )

    def predict_paths(
        self,
        paths: Sequence[str | Path],
        config: PipelineConfig = PipelineConfig(),
        *,
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[int, LocationPrediction | PhotoError]]:
        """Yields ``(index into paths, prediction or PhotoError)`` as results come: a photo
        that cannot be read at once, the others ``config.batch_size`` at a time. Stops early
        (without raising) once ``cancel()`` returns True."""
        config.validate()
        self.resolve(config.engine)
        paths = [Path(p) for p in paths]
        total = len(paths)
        state = {"done": 0.0}
        if progress is not None:
            progress(0.0, total)
        chunk: list[tuple[int, np.ndarray]] = []
        try:
            for i, out in self.encoder.embed_paths(
                paths,
                batch_size=config.batch_size,
                num_workers=config.num_workers,
                cancel=cancel,
                normalize=False,
            ):
                if isinstance(out, PhotoError):
                    state["done"] += 1
                    yield i, out
                else:
                    chunk.append((i, out))
                if len(chunk) >= config.batch_size:
                    yield from self._predict_chunk(chunk, config, progress, cancel, state, total)
                    chunk = []
                if cancel is not None and cancel():
                    return
            if chunk:
                yield from self._predict_chunk(chunk, config, progress, cancel, state, total)
        except CancelledError:
            return

    def _predict_chunk(self, chunk, config, progress, cancel, state, total):
        step = _step_progress(progress, state["done"], len(chunk), total)
        preds = self.predict_features(
            np.stack([f for _, f in chunk]), config, progress=step, cancel=cancel
        )
        for (index, _), pred in zip(chunk, preds, strict=True):
            yield index, pred
        state["done"] += len(chunk)
        if progress is not None:
            progress(state["done"], total)


def _step_progress(progress: ProgressFn | None, base: float, count: int, total: int):
    """Sampler steps ``(s, n)`` of a batch of ``count`` photos as photos done of ``total``."""
    if progress is None:
        return None
    return lambda s, n: progress(base + count * s / max(n, 1), total)


def hybrid_refusal(checkpoint, identity: dict | None) -> str:
    """Why the checkpoint cannot drive the hybrid, and what to do instead."""
    have = describe_encoder(identity) if isinstance(identity, dict) else "an unrecorded encoder"
    return (
        f"{checkpoint}: LocDiff-H needs a LocDiffusion checkpoint trained on GeoCLIP's backbone "
        f"(CLIP ViT-L-14 / openai), but this one was trained on {have}; use --engine locdiff "
        "with it, or train on embeddings made with `locdiff embed --model ViT-L-14 --pretrained "
        "openai`"
    )
