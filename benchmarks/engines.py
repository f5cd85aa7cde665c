"""Per-photo cost of the three engines, and of the whole pipeline against GeoCLIP's own code.

    python benchmarks/engines.py [--photos 8] [--features 256] [--reference-photos 2]
        [--degree 47] [--samples 16] [--steps 20] [--device cpu] [--skip-reference]
        [--skip-pipeline]

Heads (the backbone excluded): random raw 768-d features go through GeoCLIP's head (the real
trained weights of the installed ``geoclip`` wheel and its 100K gallery, features cached),
through LocDiffusion (a random-initialised CS-UNet of the paper's shape at degree ``--degree``,
``--samples`` samples, DDIM ``--steps``; speed does not depend on the weights) and through the
hybrid (LocDiffusion, then GeoCLIP's retrieval restricted to 200 km of its samples; the
restricted retrieval is timed on its own and added, since the sampler's run-to-run spread is
larger than it).

Whole pipeline: real photos from ``../shared/testdata`` (cycled) decoded, embedded by a random
CLIP ViT-L/14 (QuickGELU, OpenAI's shape) and predicted by the GeoCLIP engine, in photos per
second; then the reference ``geoclip.GeoCLIP.predict(path, top_k=5)`` on the same machine with
a random ViT-L/14 of the same shape (its Hugging Face ``CLIPModel``), which encodes the whole
gallery on every call. The first gallery encoding (a cold cache) is timed too.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from tables import print_records, timed  # a sibling script

from locdiff_core.checkpoint import CheckpointConfig
from locdiff_core.diffusion import DiffusionConfig
from locdiff_core.engines import Engine
from locdiff_core.geoclip import GeoCLIPHead, RetrievalConfig
from locdiff_core.hybrid import hybrid_predict
from locdiff_core.image_encoder import ImageEncoder, _architecture, _build_tower
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.pipeline import Pipeline, PipelineConfig
from locdiff_core.predictor import Predictor, PredictorConfig

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "exif-samples" / "jpg"


def random_features(n: int) -> torch.Tensor:
    """Raw features with the scale of CLIP ViT-L/14's projected output (norm about 20)."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 768, generator=g) * 0.7


def locdiff_predictor(degree: int, device: str) -> Predictor:
    torch.manual_seed(0)
    cfg = CSUNetConfig(degree=degree, dim_cond=768, dropout=0.0)
    return Predictor(CSUNet(cfg).to(device), CheckpointConfig(cfg, DiffusionConfig()))


def vit_l14_encoder(device: str) -> ImageEncoder:
    arch = _architecture("ViT-L-14", "openai")  # QuickGELU, as OpenAI's weights need
    torch.manual_seed(0)
    identity = {"name": "ViT-L-14", "pretrained": None, "dim": 768, "seed": 0}
    return ImageEncoder(_build_tower(arch), arch.preprocess, identity, torch.device(device))


def head_rows(head: GeoCLIPHead, predictor: Predictor, args) -> list[dict[str, str]]:
    raw = random_features(args.features)
    locdiff_cfg = PredictorConfig(num_samples=args.samples, num_steps=args.steps, batch_size=32)
    pipeline = Pipeline(None, predictor=predictor, geoclip=head)
    n_diff = min(args.features, 32)
    rows = []
    geoclip = timed(lambda: head.predict(raw, RetrievalConfig(batch_size=256))) / len(raw)
    logits = timed(lambda: head.logits(raw[:64])) / 64
    rows.append(row("GeoCLIP head (retrieval over 100K)", geoclip, len(raw), "batch 256"))
    rows.append(row("  of which image head + similarities", logits, 64, "batch 64"))
    config = PipelineConfig(Engine.LOCDIFF, locdiff_cfg, batch_size=32)
    locdiff = timed(lambda: pipeline.predict_features(raw[:n_diff], config), 2) / n_diff
    note = f"L={predictor.degree}, K={args.samples}, DDIM {args.steps}"
    rows.append(row("LocDiffusion head", locdiff, n_diff, note))
    # the hybrid is LocDiffusion plus the restricted retrieval: time the addition on its own
    # (the sampler's run-to-run spread is larger than the addition)
    own = pipeline.predict_features(raw[:n_diff], config)
    added = timed(lambda: hybrid_predict(head, raw[:n_diff], own), 3) / n_diff
    share = f"LocDiffusion + {1000 * added:.1f} ms (+{100 * added / locdiff:.1f}%)"
    rows.append(row("LocDiff-H head (hybrid)", locdiff + added, n_diff, share))
    return rows


def row(what: str, seconds_per_photo: float, count: int, note: str) -> dict[str, str]:
    return {
        "what": what,
        "ms / photo": f"{1000 * seconds_per_photo:.2f}",
        "photos/s": f"{1 / seconds_per_photo:.2f}",
        "photos": str(count),
        "note": note,
    }


def pipeline_rows(head: GeoCLIPHead, args) -> list[dict[str, str]]:
    photos = sorted((SAMPLES / "gps").glob("*.jpg")) + sorted(SAMPLES.glob("*.jpg"))
    paths = list(itertools.islice(itertools.cycle(photos), args.photos))
    pipeline = Pipeline(vit_l14_encoder(args.device), geoclip=head)
    config = PipelineConfig(Engine.GEOCLIP, batch_size=8)
    list(pipeline.predict_paths(paths[:1], config))  # warm up

    def run() -> None:
        got = list(pipeline.predict_paths(paths, config))
        assert len(got) == len(paths)

    ours = timed(run, 1) / len(paths)
    rows = [row("pipeline, GeoCLIP engine (ours)", ours, len(paths), "decode+ViT-L/14+head")]
    if args.skip_reference:
        return rows
    from geoclip import GeoCLIP  # imports transformers and pandas

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = GeoCLIP(from_pretrained=True, clip_pretrained=False).eval()
    refs = paths[: args.reference_photos]
    reference.predict(str(refs[0]), top_k=5)  # warm up

    def run_reference() -> None:
        for p in refs:
            reference.predict(str(p), top_k=5)

    theirs = timed(run_reference, 1) / len(refs)
    rows.append(row("geoclip.GeoCLIP.predict (reference)", theirs, len(refs), "same backbone"))
    rows.append(
        {"what": "ours / reference", "ms / photo": "", "photos/s": f"{theirs / ours:.1f}x",
         "photos": "", "note": ""}
    )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--reference-photos", type=int, default=2)
    parser.add_argument("--degree", type=int, default=47)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true", help="the heads only")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}"
    )
    with tempfile.TemporaryDirectory() as cold:
        start = time.perf_counter()
        GeoCLIPHead.load(cache_dir=Path(cold), device=args.device)
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        head = GeoCLIPHead.load(cache_dir=Path(cold), device=args.device)
        load_s = time.perf_counter() - start
    print_records(
        "GeoCLIP gallery (100,000 points)",
        [
            {"step": "first load: encode the gallery and cache it", "s": f"{encode_s:.1f}"},
            {"step": "later loads: read the cache", "s": f"{load_s:.2f}"},
        ],
    )
    predictor = locdiff_predictor(args.degree, args.device)
    print_records("Heads (backbone excluded)", head_rows(head, predictor, args))
    if not args.skip_pipeline:
        print_records("Whole pipeline from JPEG files", pipeline_rows(head, args))


if __name__ == "__main__":
    main()
