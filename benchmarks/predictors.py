"""Prediction settings compared on trained runs: the same weights, different ways to guess.

    python benchmarks/predictors.py --task /tmp/locdiff-dev-task --held-out near \\
        --run /tmp/locdiff-recipes/L23-near-default-seed0 [--run ...] \\
        [--draw K=16 --draw K=64 --draw K=16,sampler=ddpm ...] [--radius 100 250 500] \\
        [--val-items 512] [--json out.json]

Every run's weights (its ``best.safetensors`` when it has one, else its last checkpoint)
predict the held-out photos its validation scores (``trainer.train.validation_subset``) once
per ``--draw``: the samples' settings (``K``, ``sampler`` ddim/ddpm, ``steps``, ``eta``,
``decode`` radius in km). Each draw is scored three ways on the very same samples: the
predictor's default best guess (the mode of the network's posterior,
``locdiff_core.predictor``), the centre of the densest cluster of samples for every
``--radius`` (km), and the samples' centre (the paper's answer). Prints one table (% within
200 / 750 / 2500 km, the median, seconds per draw) with the task's k-NN votes as the bar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dev_task import scores  # noqa: E402
from recipes import subset_classifier, subset_votes, write_json  # noqa: E402
from tables import print_table  # noqa: E402

from locdiff_core.diffusion import SamplerKind  # noqa: E402
from locdiff_core.predictor import Predictor, PredictorConfig, summarize_samples  # noqa: E402
from locdiff_core.run_layout import model_file  # noqa: E402
from trainer.data import load_embeddings  # noqa: E402
from trainer.train import validation_subset  # noqa: E402

_KEYS = {"K": "num_samples", "sampler": "sampler", "steps": "num_steps", "eta": "eta"}


def parse_draw(spec: str) -> PredictorConfig:
    """``K=64,sampler=ddpm,steps=100,eta=0.5,decode=300`` as a predictor config."""
    values: dict = {}
    for item in filter(None, spec.split(",")):
        key, _, text = item.partition("=")
        if key == "decode":
            values["decode_radius_km"] = float(text)
        elif key not in _KEYS:
            raise SystemExit(
                f"--draw {spec!r}: unknown setting {key!r} (K, sampler, steps, eta, decode)"
            )
        elif key == "sampler":
            values["sampler"] = SamplerKind(text)
        else:
            values[_KEYS[key]] = (float if key == "eta" else int)(text)
    return PredictorConfig(**values)


def guesses(predictions, radius_km: float | None) -> np.ndarray:
    """Best guesses with clusters of ``radius_km`` from the predictions' own samples (the
    samples' centre when ``radius_km`` is None)."""
    out = []
    for p in predictions:
        if radius_km is None:
            out.append(p.centre)
            continue
        lat = torch.from_numpy(p.samples[:, 0].copy())
        lon = torch.from_numpy(p.samples[:, 1].copy())
        out.append(summarize_samples(lat, lon, radius_km, 1)[0])
    return np.asarray(out, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, default=Path("/tmp/locdiff-dev-task"))
    parser.add_argument("--held-out", default="near")
    parser.add_argument("--run", type=Path, action="append", required=True)
    parser.add_argument("--draw", action="append", default=[])
    parser.add_argument("--radius", type=float, nargs="+", default=[250.0])
    parser.add_argument("--val-items", type=int, default=512)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    draws = args.draw or ["K=16"]
    val = load_embeddings(args.task / f"{args.held_out}_val.npz")
    rows = validation_subset(len(val.lat), args.val_items)
    votes = subset_votes(args.task, args.held_out, args.val_items)
    table = [("-", name, "-", "-", *_cells(vote), "-") for name, vote in votes.items()]
    classifier = subset_classifier(args.task, args.held_out, args.val_items)
    if classifier is not None:
        table.append(("-", "cell classifier (MLP)", "-", "-", *_cells(classifier), "-"))
    results = []
    for run in args.run:
        weights = model_file(run)
        predictor = Predictor.from_checkpoint(weights)
        for spec in draws:
            config = parse_draw(spec)
            start = time.perf_counter()
            predictions = predictor.predict(val.embedding[rows], config)
            took = time.perf_counter() - start
            picks = {"mode": np.asarray([p.best for p in predictions], dtype=np.float64)}
            picks |= {f"cluster {r:.0f} km": guesses(predictions, r) for r in args.radius}
            picks["centre"] = guesses(predictions, None)
            for where, guess in picks.items():
                s = scores(guess, val.lat[rows], val.lon[rows])
                table.append((run.name, weights.name, spec, where, *_cells(s), f"{took:.0f}"))
                results.append({"run": str(run), "weights": weights.name, "draw": spec,
                                "guess": where, "seconds": took, **s})  # fmt: skip
    print(f"# {args.held_out}: {len(rows)} held-out photos scored")
    print_table(
        None,
        (
            "run",
            "weights",
            "draw",
            "best guess",
            "200 km %",
            "750 km %",
            "2500 km %",
            "median km",
            "s",
        ),
        table,
        right_from=4,
    )
    if args.json:
        write_json(args.json, results)


def _cells(s: dict) -> tuple[str, ...]:
    return (f"{s['acc_200km']:.1f}", f"{s['acc_750km']:.1f}", f"{s['acc_2500km']:.1f}",
            f"{s['median_km']:,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
