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
itself knows), the unconditional guess (the densest 500 km cluster of all training
locations, the same point for every photo), and a cell classifier: a plain two-layer MLP
(GELU, 1024 wide, dropout 0.3, AdamW) trained for ``--classifier-epochs`` on the training
pairs to name the nearest of 2,000 Fibonacci cells (about 450 km apart), guessing the most
probable cell's centre (PlaNet's approach): what a small network learns from the same pairs.
Its guesses on the held-out rows are saved as ``{held}_classifier.npy`` for the recipe
benchmarks.
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
CELLS = 2000
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


def cell_classifier(train_c, train_lat, train_lon, val_c, epochs: int, seed: int) -> np.ndarray:
    """Guesses ``[N, 2]`` of the cell classifier (module docstring) for ``val_c``."""
    cell_lat, cell_lon = (t.numpy() for t in fibonacci_lattice(CELLS))
    cells = unit_xyz(cell_lat, cell_lon)
    label = torch.from_numpy(np.argmax(unit_xyz(train_lat, train_lon) @ cells.T, axis=1))

    def rms1(c: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(c), dtype=torch.float32)
        return t / t.norm(dim=1, keepdim=True) * t.shape[1] ** 0.5

    x, xv = rms1(train_c), rms1(val_c)
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(x.shape[1], 1024), torch.nn.GELU(), torch.nn.Dropout(0.3)]
    layers += [torch.nn.Linear(1024, 1024), torch.nn.GELU(), torch.nn.Dropout(0.3)]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(1024, CELLS))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.05)
    for _ in range(epochs):
        net.train()
        for rows in torch.randperm(len(x)).split(512):
            loss = torch.nn.functional.cross_entropy(net(x[rows]), label[rows], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.inference_mode():
        top = torch.cat([net(b).argmax(1) for b in xv.split(4096)]).numpy()
    return np.stack((cell_lat[top], cell_lon[top]), 1).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/locdiff-dev-task"))
    parser.add_argument("--noise", type=float, default=0.12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.02)
    parser.add_argument("--far-km", type=float, default=50.0)
    parser.add_argument("--classifier-epochs", type=int, default=2)
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
        if args.classifier_epochs > 0:
            guess = cell_classifier(
                noisy[tr], tlat, tlon, noisy[va], args.classifier_epochs, args.seed
            )
            np.save(args.out / f"{name}_classifier.npy", guess)
            results["cell classifier (MLP)"] = scores(guess, vlat, vlon)
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
