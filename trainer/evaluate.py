"""Score a prediction CSV against the dataset it was predicted on (issue 3, paper Sec. 5).

Rows are matched to the dataset by ``id``; every image of the dataset must have exactly one
prediction. The field's numbers (:func:`locdiff_core.metrics.summarize`) are computed twice:
for the best guess (the densest cluster of samples) and for the paper's answer (the geographic
centre of the samples), so the two can be compared on the same images.
"""

from __future__ import annotations

import os
from enum import StrEnum

import numpy as np

from locdiff_core.geo import great_circle_km
from locdiff_core.metrics import THRESHOLDS_KM, accuracy_key, summarize
from trainer.data import load_embeddings
from trainer.predictions import read_predictions

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
    true_lat, true_lon = data.lat[order], data.lon[order]
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
