"""A realistic development task from real pretrained parts, and its baselines.

    python benchmarks/dev_task.py [--out /tmp/locdiff-dev-task] [--noise 0.12] [--seed 0]
        [--val-fraction 0.02] [--far-km 50]

Locations: the 100,000 real MP16 photo locations of GeoCLIP's gallery (from the ``geoclip``
wheel). Conditions: GeoCLIP's trained location encoder's unit features of those locations
(512 wide), plus isotropic Gaussian noise of ``--noise`` per dimension, renormalised: a
stand-in for image embeddings that know roughly, not exactly, where they were taken, where the
noise blurs nearby places into each other. The default, 0.12, leaves a mean cosine of 0.35 to
the clean feature; at that level the best neighbour vote places about 30% of held-out photos
within 200 km and half within 750 km, below what image models reach on Im2GPS3k (GeoCLIP: 50.7%
and 69.7%), so there is room to learn and to fail (noise 0.045, cosine 0.70, lets a 1-NN vote
put 94% within 200 km: nothing to learn). Each location is used once.

Two held-out sets, both ``--val-fraction`` of the rows, written beside the training set:

* ``near``: held out with the trainer's distance-aware split at 1 km (``--val-min-km 1``): a
  held-out photo may have training photos 2 km away, as in the research splits;
* ``far``: held out by cells of about ``--far-km`` x 25 km with every training photo within
  ``--far-km`` of a held-out one dropped: memorising pairs cannot help here (with 200 km the
  cells are 5,000 km across and whole regions vanish from training).

Then every baseline on both, in the same run (% within 200/750/2500 km and the median of the
error): k-NN votes over the training pairs (cosine neighbours; the centre of the densest 500
km cluster of the k neighbours' locations; k = 1, 4, 16, 64), retrieval over a uniform grid
(the nearest of 20,000 Fibonacci points by the encoder's clean features: what the encoder
itself knows), and the unconditional guess (the densest 500 km cluster of all training
locations, the same point for every photo).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tables import print_table  # noqa: E402

from locdiff_core.geo import fibonacci_lattice, great_circle_km  # noqa: E402
from locdiff_core.geoclip.gallery import encode_gallery  # noqa: E402
from locdiff_core.geoclip.model import LocationEncoder  # noqa: E402
from locdiff_core.geoclip.weights import GeoCLIPFiles  # noqa: E402
from locdiff_core.metrics import summarize  # noqa: E402
from trainer.data import save_embeddings  # noqa: E402
from trainer.split import drop_near, split_by_distance  # noqa: E402

CLUSTER_KM = 500.0
KS = (1, 4, 16, 64)


def unit_xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)), -1)


def densest_centre(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float]:
    """The centre of the largest group of points within CLUSTER_KM of one of them."""
    xyz = unit_xyz(lat, lon)
    near = (xyz @ xyz.T) >= np.cos(CLUSTER_KM / 6371.0088)
    members = near[int(np.argmax(near.sum(1)))]
    c = xyz[members].mean(0)
    return float(np.degrees(np.arcsin(c[2] / np.linalg.norm(c)))), float(
        np.degrees(np.arctan2(c[1], c[0]))
    )


def scores(guess: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> dict:
    d = great_circle_km(
        torch.from_numpy(guess[:, 0]),
        torch.from_numpy(guess[:, 1]),
        torch.from_numpy(lat),
        torch.from_numpy(lon),
    )
    return summarize(d)


def knn_guesses(train_c, train_lat, train_lon, val_c, k: int) -> np.ndarray:
    out = np.empty((len(val_c), 2))
    for start in range(0, len(val_c), 256):
        sim = val_c[start : start + 256] @ train_c.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k > 1 else sim.argmax(1)[:, None]
        for i, rows in enumerate(top):
            out[start + i] = densest_centre(train_lat[rows], train_lon[rows])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/locdiff-dev-task"))
    parser.add_argument("--noise", type=float, default=0.12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.02)
    parser.add_argument("--far-km", type=float, default=50.0)
    args = parser.parse_args()
    start = time.perf_counter()
    files = GeoCLIPFiles.installed()
    latlon = files.gallery_coordinates()
    encoder = LocationEncoder()
    encoder.load_state_dict(files.state_dict("location_encoder"))
    encoder.eval()
    with torch.inference_mode():
        clean = encode_gallery(encoder, latlon)
    rng = np.random.default_rng(args.seed)
    noisy = clean + rng.normal(0.0, args.noise, clean.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    lat, lon = latlon[:, 0].astype(np.float64), latlon[:, 1].astype(np.float64)
    cosine = float(np.mean(np.sum(noisy * clean, 1)))
    near = split_by_distance(lat, lon, args.val_fraction, 1.0, seed=args.seed)
    far = split_by_distance(lat, lon, args.val_fraction, args.far_km, seed=args.seed + 1)
    args.out.mkdir(parents=True, exist_ok=True)
    ids = np.asarray([f"mp16-gallery:{i}" for i in range(len(lat))])
    encoder_id = {"name": "geoclip-location-encoder+noise", "noise": args.noise, "dim": 512}
    for name, split in (("near", near), ("far", far)):
        for part, rows in (("train", split.train), ("val", split.val)):
            save_embeddings(
                args.out / f"{name}_{part}.npz",
                noisy[rows],
                lat[rows],
                lon[rows],
                ids=ids[rows],
                encoder=encoder_id,
            )
    grid_lat, grid_lon = (t.numpy() for t in fibonacci_lattice(20_000))
    with torch.inference_mode():
        grid = encode_gallery(encoder, np.stack((grid_lat, grid_lon), 1))
    print(
        f"# {len(lat):,} MP16 gallery locations; noise {args.noise} per dimension (mean "
        f"cosine to the clean feature {cosine:.3f}); written to {args.out}"
    )
    rows = []
    for name, split in (("near", near), ("far", far)):
        tr, va = split.train, split.val
        tlat, tlon, vlat, vlon = lat[tr], lon[tr], lat[va], lon[va]
        if name == "far":  # check: no training photo within far-km of a held-out one
            kept, _ = drop_near(tlat, tlon, np.arange(len(tr)), vlat, vlon, args.far_km)
            assert len(kept) == len(tr)
        results = {}
        for k in KS:
            results[f"{k}-NN vote"] = scores(
                knn_guesses(noisy[tr], tlat, tlon, noisy[va], k), vlat, vlon
            )
        best = np.argmax(noisy[va] @ grid.T, axis=1)
        results["uniform-grid retrieval"] = scores(
            np.stack((grid_lat[best], grid_lon[best]), 1), vlat, vlon
        )
        sample = rng.choice(len(tr), min(len(tr), 8000), replace=False)
        centre = densest_centre(tlat[sample], tlon[sample])
        results["unconditional (one point)"] = scores(np.tile(centre, (len(va), 1)), vlat, vlon)
        for model, s in results.items():
            rows.append(
                (
                    name,
                    f"{len(tr):,} / {len(va):,}",
                    model,
                    f"{s['acc_200km']:.1f}",
                    f"{s['acc_750km']:.1f}",
                    f"{s['acc_2500km']:.1f}",
                    f"{s['median_km']:,.0f}",
                )
            )
        (args.out / f"{name}_baselines.json").write_text(json.dumps(results, indent=1))
    print_table(
        None,
        ("held out", "train / val", "baseline", "200 km %", "750 km %", "2500 km %", "median km"),
        rows,
        right_from=3,
    )
    print(f"# {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
