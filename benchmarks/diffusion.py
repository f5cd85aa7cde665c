"""LocDiffusion speed and accuracy tables: throughput, latency, DDIM steps, loss ablation.

    python benchmarks/diffusion.py [--device cpu|cuda] [--quick] [--seconds S]

Prints four tables:

1. training throughput (samples/s) at L = 23 and 47 with the paper-sized CS-UNet
   (widths 1024/512/256, bottleneck 128, 768-wide condition, SHDD-KL with 2048 anchors);
2. sampling latency per input for K = 16 samples at L = 47 with DDPM-100 and DDIM-20, decode
   included (a paper-sized model briefly trained on the generated task);
3. on the generated task (trainer.synthetic, L = 15): accuracy of DDIM-10/20/50 against
   DDPM-100, and the fewest DDIM steps within 1 point of DDPM-100 at 200 km and above;
4. the loss ablation of the paper's Table 7 on the generated task: SHDD-KL with the paper's
   uniform anchors, with the sub-anchor-resolving importance estimator, cosine and MSE.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from tables import print_table  # a sibling script

from locdiff_core.diffusion import DiffusionConfig, GaussianDiffusion, LossKind, SamplerKind
from locdiff_core.geo import great_circle_km
from locdiff_core.metrics import accuracy_key, summarize
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.predictor import Predictor, PredictorConfig
from locdiff_core.shdd import KLEstimator
from trainer.data import save_embeddings
from trainer.synthetic import SyntheticTask
from trainer.train import RunWriter, TrainConfig, train

PAPER = {"widths": (1024, 512, 256), "dim_bottleneck": 128}
SMALL = {"widths": (256, 128), "dim_bottleneck": 64, "dropout": 0.0, "lr": 1e-3}
ACCURACY_KM = (25, 200, 750, 2500)
ACCURACY_COLUMNS = (*(f"{km} km" for km in ACCURACY_KM), "median km")


def throughput(device: torch.device, degree: int, batch: int, seconds: float) -> float:
    model = CSUNet(CSUNetConfig(degree=degree, dim_cond=768, **PAPER)).to(device)
    diffusion = GaussianDiffusion(DiffusionConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99), weight_decay=5e-4)
    emb, lat, lon = SyntheticTask(dim_cond=768).sample(batch * 4, seed=0)
    emb, lat, lon = (torch.from_numpy(a).to(device) for a in (emb, lat, lon))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    done, start, step = 0, None, 0
    while True:
        idx = torch.randint(len(lat), (batch,), device=device)
        loss = diffusion.training_losses(model, lat[idx], lon[idx], emb[idx], degree).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step == 2:  # warm-up done
            sync()
            start = time.perf_counter()
        elif step > 2:
            done += batch
            if time.perf_counter() - start > seconds:
                break
    sync()
    return done / (time.perf_counter() - start)


def train_on_task(folder: Path, task: SyntheticTask, degree: int, seconds: float, **kw) -> Path:
    emb, lat, lon = task.sample(20_000, seed=1)
    save_embeddings(folder / "train.npz", emb, lat, lon)
    config = TrainConfig(
        data=folder / "train.npz",
        out=folder / "run",
        degree=degree,
        epochs=1000,
        batch_size=256,
        max_seconds=seconds,
        **kw,
    )
    train(config, RunWriter(config.out, echo=lambda line: None))
    return config.out


def accuracy(predictor: Predictor, emb, lat, lon, config: PredictorConfig) -> dict:
    preds = predictor.predict(emb, config)
    best = torch.tensor([p.best for p in preds], dtype=torch.float64)
    d = great_circle_km(best[:, 0], best[:, 1], torch.tensor(lat), torch.tensor(lon))
    return summarize(d)


def accuracy_cells(summary: dict) -> list[str]:
    """A :func:`~locdiff_core.metrics.summarize` result under :data:`ACCURACY_COLUMNS`."""
    cells = [f"{summary[accuracy_key(km)]:.1f}" for km in ACCURACY_KM]
    return [*cells, f"{summary['median_km']:.0f}"]


def latency_table(device, seconds: float, quick: bool) -> None:
    print_table(
        "sampling latency per input, K = 16 samples, L = 47, decode included",
        ("sampler", "steps", "inputs", "s per input", "sampling s", "decode s"),
        latency_rows(device, seconds, quick),
    )


def latency_rows(device, seconds: float, quick: bool):
    task = SyntheticTask(dim_cond=768)
    with tempfile.TemporaryDirectory() as tmp:
        run = train_on_task(Path(tmp), task, 47, seconds, **PAPER, lr=1e-3, dropout=0.0)
        predictor = Predictor.from_checkpoint(run, device)
        emb, _, _ = task.sample(4 if quick else 16, seed=5)
        for kind, steps in ((SamplerKind.DDPM, 100), (SamplerKind.DDIM, 20)):
            config = PredictorConfig(sampler=kind, num_steps=steps, batch_size=len(emb))
            predictor.predict(emb[:1], config)  # warm-up
            t0 = time.perf_counter()
            marks = []
            predictor.predict(
                emb, config, progress=lambda d, t, m=marks: m.append(time.perf_counter())
            )
            total = time.perf_counter() - t0
            sampling, n = marks[-1] - t0, len(emb)
            decode = total - sampling
            yield kind.value, steps, n, f"{total / n:.3f}", f"{sampling:.2f}", f"{decode:.2f}"


def steps_table(seconds: float, quick: bool) -> None:
    results = {}
    print_table(
        "generated task (L = 15): DDIM steps against DDPM-100 (best guess, % within)",
        ("sampler", *ACCURACY_COLUMNS),
        steps_rows(seconds, quick, results),
    )
    ref = results[(SamplerKind.DDPM, 100)]
    keys = [accuracy_key(km) for km in ACCURACY_KM if km >= 200]
    fewest = next(
        (
            n
            for n in (10, 20, 50)
            if all(results[(SamplerKind.DDIM, n)][k] >= ref[k] - 1.0 for k in keys)
        ),
        None,
    )
    print(f"\nfewest DDIM steps within 1 point of DDPM-100 at 200 km and above: {fewest}")


def steps_rows(seconds: float, quick: bool, results: dict):
    """The rows of :func:`steps_table`; each sampler's summary is also kept in ``results``."""
    task = SyntheticTask()
    emb, lat, lon = task.sample(100 if quick else 200, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = Predictor.from_checkpoint(train_on_task(Path(tmp), task, 15, seconds, **SMALL))
        for kind, steps in (
            (SamplerKind.DDPM, 100),
            *((SamplerKind.DDIM, n) for n in (10, 20, 50)),
        ):
            r = accuracy(predictor, emb, lat, lon, PredictorConfig(sampler=kind, num_steps=steps))
            results[(kind, steps)] = r
            yield f"{kind.value}-{steps}", *accuracy_cells(r)


def ablation_table(seconds: float, quick: bool) -> None:
    print_table(
        "loss ablation (paper Table 7) on the generated task, L = 15, DDIM-20",
        ("loss", *ACCURACY_COLUMNS),
        ablation_rows(seconds, quick),
    )


def ablation_rows(seconds: float, quick: bool):
    task = SyntheticTask()
    emb, lat, lon = task.sample(100 if quick else 200, seed=7)
    variants = {
        "SHDD-KL, uniform anchors (paper)": DiffusionConfig(kl_estimator=KLEstimator.UNIFORM),
        "SHDD-KL, importance anchors": DiffusionConfig(kl_estimator=KLEstimator.IMPORTANCE),
        "cosine": DiffusionConfig(loss=LossKind.COSINE),
        "MSE": DiffusionConfig(loss=LossKind.MSE),
    }
    for name, diffusion in variants.items():
        with tempfile.TemporaryDirectory() as tmp:
            run = train_on_task(Path(tmp), task, 15, seconds, diffusion=diffusion, **SMALL)
            r = accuracy(Predictor.from_checkpoint(run), emb, lat, lon, PredictorConfig())
        yield name, *accuracy_cells(r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--seconds", type=float, default=60.0, help="training time per model")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"# diffusion benchmark on {device.type} ({name or platform.machine()}), "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    batch, seconds = (64, 5.0) if args.quick else (256, 20.0)
    print_table(
        "training throughput (paper-sized CS-UNet, SHDD-KL, 2048 anchors)",
        ("L", "batch", "samples / s"),
        ((L, batch, f"{throughput(device, L, batch, seconds):.0f}") for L in (23, 47)),
    )
    latency_table(device, args.seconds, args.quick)
    steps_table(args.seconds, args.quick)
    ablation_table(args.seconds, args.quick)


if __name__ == "__main__":
    main()
