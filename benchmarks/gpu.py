"""The GPU figures in one table: SHDD, the predictor, training and image embedding on CUDA.

    PYTHONPATH=. python benchmarks/gpu.py [--device cuda] [--quick]

Runs from a checkout (nothing installed) and prints one markdown table, each row with the
target it is held to:

* SHDD encode, ns per point-coefficient at L = 47 (eager, and ``torch.compile``'d where it
  compiles), and the mode-seeking decode of 16 encodings at L = 47 (ms);
* the predictor, ms per photo with K = 16 samples at L = 47 (DDPM-100 and DDIM-20; batches of
  1 and 64 photos; decode and best-guess clustering included) with a paper-sized CS-UNet of
  random weights;
* ``locdiff train`` samples/s at L = 23, 31 and 47 (paper-sized CS-UNet, batch 512, bfloat16
  autocast) in one process, and the paper's epoch (1500 iterations of 512 at L = 31: 388 s on
  an RTX 5500) estimated from the L = 31 rate;
* image embedding, images/s: the ViT-L/14 tower alone (random weights, float16 autocast,
  batches of 256) and ``embed_paths`` end to end on generated 640 x 480 JPEGs decoded by
  worker processes.

About 5 minutes on one H100; ``--quick`` shrinks every size for a dry run on a CPU (its
figures mean nothing). The machine it runs on lacks open_clip: when ``import open_clip``
fails, the wheels in ``.wheels/`` (``pip download --no-deps open_clip_torch ftfy -d .wheels``)
are installed into a temporary folder first.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_STARTED = time.perf_counter()


def _note(text: str) -> None:
    print(f"# [{time.perf_counter() - _STARTED:5.0f} s] {text}", file=sys.stderr, flush=True)


def _ensure_open_clip() -> None:
    try:
        import open_clip  # noqa: F401
    except ImportError:
        wheels = sorted((ROOT / ".wheels").glob("*.whl"))
        if not wheels:
            raise SystemExit(
                "open_clip is missing and .wheels/ holds no wheels; run `pip download --no-deps "
                "open_clip_torch ftfy -d .wheels` where a registry is reachable"
            ) from None
        target = Path(tempfile.mkdtemp(prefix="gpu-bench-wheels-"))
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        subprocess.run([*cmd, "--target", str(target), *map(str, wheels)], check=True)
        sys.path.insert(0, str(target))


def _timed(fn, device, repeats: int = 5) -> float:
    """Fastest of ``repeats`` calls (seconds), after one warm-up, synchronised on CUDA."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def shdd_rows(device, quick: bool):
    import torch

    from locdiff_core import shdd

    L = 15 if quick else 47
    n = 2_000 if quick else 200_000
    gen = torch.Generator().manual_seed(0)
    lat = (torch.rand(n, generator=gen, dtype=torch.float64) * 180 - 90).to(device)
    lon = (torch.rand(n, generator=gen, dtype=torch.float64) * 360 - 180).to(device)
    coefs = n * (L + 1) ** 2
    eager = _timed(lambda: shdd.encode(lat, lon, L), device)
    yield ("SHDD encode, eager", f"L={L}, {n:,} points", f"{eager / coefs * 1e9:.3f} ns/coef", "")
    try:
        compiled_encode = torch.compile(shdd.encode, dynamic=False)
        compiled = _timed(lambda: compiled_encode(lat, lon, L), device)
        torch.testing.assert_close(compiled_encode(lat, lon, L), shdd.encode(lat, lon, L))
        figure = f"{compiled / coefs * 1e9:.3f} ns/coef ({eager / compiled:.1f}x eager)"
    except Exception as exc:  # a compiler missing or failing here is reported, not fatal
        figure = f"n/a ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    yield ("SHDD encode, torch.compile", f"L={L}, {n:,} points", figure, "")
    e = shdd.encode(lat[:16], lon[:16], L)
    e = e + 0.05 * torch.randn(e.shape, generator=gen, dtype=e.dtype).to(device) * e.std()
    decode = _timed(lambda: shdd.decode(e), device)
    yield ("SHDD decode", f"16 at L={L}", f"{decode * 1e3:.2f} ms", "<= 5 ms")


def predictor_rows(device, quick: bool):
    import torch

    from locdiff_core.checkpoint import CheckpointConfig
    from locdiff_core.diffusion import DiffusionConfig, SamplerKind
    from locdiff_core.nn import CSUNet, CSUNetConfig
    from locdiff_core.predictor import Predictor, PredictorConfig

    L = 15 if quick else 47
    widths = (64, 32) if quick else (1024, 512, 256)
    torch.manual_seed(0)
    model_cfg = CSUNetConfig(
        degree=L, dim_cond=768, widths=widths, dim_bottleneck=16 if quick else 128
    )
    model = CSUNet(model_cfg).to(device).eval()
    predictor = Predictor(model, CheckpointConfig(model_cfg, DiffusionConfig()))
    emb = torch.nn.functional.normalize(torch.randn(64, 768), dim=-1).numpy()
    batches = (1, 4) if quick else (1, 64)
    for kind, steps in ((SamplerKind.DDPM, 100), (SamplerKind.DDIM, 20)):
        for batch in batches:
            cfg = PredictorConfig(num_samples=16, sampler=kind, num_steps=steps, batch_size=batch)
            inputs = emb[:batch]
            seconds = _timed(
                lambda inputs=inputs, cfg=cfg: predictor.predict(inputs, cfg), device, repeats=3
            )
            target = "<= 10 ms" if batch > 1 else ""
            yield (
                f"predictor {kind.value.upper()}-{steps}",
                f"K=16, L={L}, batch {batch}",
                f"{seconds / batch * 1e3:.1f} ms/photo",
                target,
            )


def training_rows(device, quick: bool):
    from train_speed import PAPER_EPOCH, make_data, measure

    degrees = (7,) if quick else (23, 31, 47)
    steps, batch = (6, 64) if quick else (150, 512)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp), rows=batch * 20)
        for L in degrees:
            rate = measure(data, L, 1, device.type, batch, steps, log_every=max(1, steps // 5))
            yield ("train, 1 process", f"L={L}, batch {batch}", f"{rate:,.0f} samples/s", "")
            if PAPER_EPOCH["degree"] == L or quick:
                epoch = PAPER_EPOCH["iterations"] * PAPER_EPOCH["batch"] / rate
                yield (
                    "paper epoch (1500 x 512, L=31)",
                    f"estimated from L={L}",
                    f"{epoch:.0f} s (paper: 388 s on an RTX 5500)",
                    "< 60 s",
                )


def embedding_rows(device, quick: bool):
    import numpy as np
    import torch
    from PIL import Image

    from locdiff_core.image_encoder import ImageEncoder

    name = "ViT-B-32" if quick else "ViT-L-14"
    encoder = ImageEncoder.random_init(name, device=str(device))
    size = encoder.preprocess.get("image_size", 224)
    size = size[0] if isinstance(size, (list, tuple)) else size
    batch = 8 if quick else 256
    pixels = torch.randn(batch, 3, size, size)
    if device.type == "cuda":
        pixels = pixels.pin_memory()
    tower = _timed(lambda: encoder.embed_batch(pixels), device, repeats=3)
    yield (
        f"embed, {name} tower",
        f"batch {batch}, random weights",
        f"{batch / tower:,.0f} img/s",
        "",
    )
    count = 16 if quick else 2048
    workers = min(14, max(1, (os.cpu_count() or 2) - 2))
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        paths = []
        for i in range(64 if not quick else count):
            path = Path(tmp) / f"p{i:04d}.jpg"
            Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(
                path, quality=85
            )
            paths.append(path)
        paths = [paths[i % len(paths)] for i in range(count)]

        def run() -> int:
            return sum(1 for _ in encoder.embed_paths(paths, batch_size=batch, num_workers=workers))

        seconds = _timed(run, device, repeats=1)
    yield (
        f"embed, {name} end to end",
        f"{count:,} JPEGs 640x480, {workers} decode workers",
        f"{count / seconds:,.0f} img/s",
        "",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a dry run on a CPU")
    args = parser.parse_args()
    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; run with --device cpu --quick for a dry run")
    _ensure_open_clip()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(
        f"# {name}; torch {torch.__version__}; {os.cpu_count()} CPUs"
        + (" (--quick)" if args.quick else "")
    )
    from tables import print_table

    def rows():
        for section, make in (
            ("SHDD", shdd_rows),
            ("predictor", predictor_rows),
            ("training", training_rows),
            ("embedding", embedding_rows),
        ):
            _note(f"{section} ...")
            try:
                yield from make(device, args.quick)
            except Exception as exc:  # one section failing still leaves the others' figures
                yield (section, "failed", f"{type(exc).__name__}: {str(exc)[:200]}", "")
        _note("done")

    print_table(None, ("what", "setting", "figure", "target"), rows())


if __name__ == "__main__":
    main()
