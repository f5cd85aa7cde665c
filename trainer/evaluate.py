"""Score a prediction CSV against the dataset it was predicted on (paper Sec. 5), or an engine
end to end on a location CSV's images (:func:`evaluate_images`).

Rows are matched to the dataset by ``id``; every image of the dataset must have exactly one
prediction. The field's numbers (:func:`locdiff_core.metrics.summarize`) are computed twice:
for the best guess and for the engine's paper answer (``centre``: LocDiffusion's centre of the
samples, GeoCLIP's and LocDiff-H's top gallery point), so the two can be compared on the same
images.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from locdiff_core.engines import Engine
from locdiff_core.geo import great_circle_km
from locdiff_core.metrics import THRESHOLDS_KM, accuracy_key, summarize
from locdiff_core.photo.errors import PhotoError
from locdiff_core.pipeline import Pipeline, PipelineConfig
from trainer.data import load_embeddings
from trainer.embed import outcome_of
from trainer.location_csv import BadRow, LocatedImage, read_location_csv
from trainer.manifest import Outcome
from trainer.predictions import PredictionRow, read_predictions

_EXAMPLES = 3


class Guess(StrEnum):
    """Which predicted location is scored."""

    BEST = "best"
    CENTRE = "centre"


def evaluate(pred_path: str | os.PathLike, data_path: str | os.PathLike) -> dict[str, dict]:
    """``{"best": summarize(...), "centre": summarize(...)}`` of the great-circle errors."""
    rows = read_predictions(pred_path)
    if not rows:
        raise ValueError(f"{pred_path}: holds a header but no predictions")
    data = load_embeddings(data_path)
    index = {image_id: i for i, image_id in enumerate(data.ids.tolist())}
    _check_same_ids(pred_path, data_path, [r.id for r in rows], index)
    order = np.array([index[r.id] for r in rows])
    return score(rows, data.lat[order], data.lon[order])


def score(rows: list[PredictionRow], true_lat, true_lon) -> dict[str, dict]:
    """``{"best": summarize(...), "centre": summarize(...)}`` of predictions against the truth
    (``true_lat``, ``true_lon`` (N,) degrees, in the order of ``rows``)."""
    result = {}
    for guess in Guess:
        lat = np.array([getattr(r, f"{guess.value}_lat") for r in rows])
        lon = np.array([getattr(r, f"{guess.value}_lon") for r in rows])
        result[guess.value] = summarize(great_circle_km(lat, lon, true_lat, true_lon))
    return result


def _check_same_ids(pred_path, data_path, pred_ids: list[str], index: dict[str, int]) -> None:
    predicted = set(pred_ids)
    unknown = [i for i in pred_ids if i not in index]
    missing = [i for i in index if i not in predicted]
    if not unknown and not missing:
        return
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} of the dataset's {len(index)} ids have no prediction "
            f"(e.g. {_examples(missing)})"
        )
    if unknown:
        problems.append(
            f"{len(unknown)} predicted ids are not in the dataset (e.g. {_examples(unknown)})"
        )
    raise ValueError(
        f"{pred_path} does not match {data_path}: {' and '.join(problems)}; evaluate on the "
        "dataset the predictions were made for"
    )


def _examples(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_EXAMPLES])
    return shown + (", ..." if len(ids) > _EXAMPLES else "")


def format_table(result: dict[str, dict]) -> str:
    """A plain-text table: one row per guess, accuracies (%) then median km and GeoScore."""
    header = ["guess", "count"] + [f"{t} km %" for t in THRESHOLDS_KM]
    header += ["median km", "GeoScore"]
    lines = [header]
    for guess, s in result.items():
        cells = [guess, str(s["count"])]
        cells += [f"{s[accuracy_key(t)]:.1f}" for t in THRESHOLDS_KM]
        cells += [f"{s['median_km']:.1f}", f"{s['geoscore']:.1f}"]
        lines.append(cells)
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    out = []
    for line in lines:
        first = line[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(line[1:], widths[1:], strict=True))
        out.append("  ".join([first, *rest]))
    return "\n".join(out)


@dataclass
class ImageEvaluation:
    """The scores of a checkpoint on a location CSV's images, and what was left out."""

    scores: dict[str, dict]  # as evaluate(): {"best": ..., "centre": ...}
    total: int  # rows in the CSV
    skipped: Counter = field(default_factory=Counter)  # outcome ("missing", ...) -> images
    problems: list[str] = field(default_factory=list)  # the first few reasons
    predictions: list[PredictionRow] = field(default_factory=list)
    engine: str = ""  # the engine that predicted (locdiff_core.engines.Engine values)


def evaluate_images(
    checkpoint: str | os.PathLike | None,
    csv_path: str | os.PathLike,
    images: str | os.PathLike,
    *,
    engine: Engine | None = None,
    encoder_weights: Path | None = None,
    device: str = "auto",
    download: bool = False,
    cache_dir: Path | None = None,
    config: PipelineConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImageEvaluation:
    """Predict the CSV's images with ``engine`` (``None``: the best the checkpoint allows;
    GeoCLIP needs no checkpoint) through :class:`~locdiff_core.pipeline.Pipeline`, and score.

    Images that are missing, unreadable or on a bad row are skipped and counted. The CSV and
    the image folder are checked before any model is loaded (a typo costs no load).
    """
    if not Path(images).is_dir():
        raise ValueError(f"{images}: no such folder (--images, the folder the ids are under)")
    rows = list(read_location_csv(csv_path, images))
    config = dataclasses.replace(config or PipelineConfig(), engine=engine)
    pipeline = Pipeline.load(
        engine,
        checkpoint=checkpoint,
        encoder_weights=encoder_weights,
        device=device,
        download=download,
        cache_dir=cache_dir,
    )
    result = ImageEvaluation({}, len(rows), engine=pipeline.resolve(engine).value)
    located = [r for r in rows if isinstance(r, LocatedImage)]

    def skip(outcome: str, reason: str) -> None:
        result.skipped[outcome] += 1
        if len(result.problems) < _EXAMPLES:
            result.problems.append(reason)

    for row in rows:
        if isinstance(row, BadRow):
            skip(Outcome.BAD_ROW.value, row.reason)
    kept = []
    report = _stage(progress, "predicting")
    photos_progress = None if report is None else (lambda d, t: report(int(d), t))
    for i, out in pipeline.predict_paths(
        [r.path for r in located], config, progress=photos_progress
    ):
        if isinstance(out, PhotoError):
            skip(outcome_of(out).value, str(out))
        else:
            kept.append(located[i])
            result.predictions.append(PredictionRow.from_prediction(located[i].id, out))
    if not kept:
        raise ValueError(
            f"{csv_path}: none of its {len(rows)} images could be read "
            f"({dict(result.skipped)}; e.g. {result.problems[:1]}); check --images"
        )
    true_lat = np.array([r.lat for r in kept])
    true_lon = np.array([r.lon for r in kept])
    result.scores = score(result.predictions, true_lat, true_lon)
    return result


def _stage(progress, stage: str):
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)
