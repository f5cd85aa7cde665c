"""``locdiff predict``: locations for photos or an embedding dataset, with any engine.

    locdiff predict [--engine geoclip|locdiff|hybrid] --images PHOTO_OR_FOLDER... --out PRED.csv \\
        [--checkpoint RUN_DIR] [--encoder-weights FILE] [--download [--sha256 HEX]]
    locdiff predict --engine locdiff --checkpoint RUN_DIR --data TEST --out PRED.csv

Engines (``locdiff_core.engines``): ``geoclip`` (GeoCLIP's retrieval, no checkpoint needed),
``locdiff`` (LocDiffusion, a checkpoint) and ``hybrid`` (LocDiff-H: LocDiffusion's regions, then
GeoCLIP's retrieval within ``--hybrid-radius-km`` of them; a checkpoint trained on CLIP
ViT-L/14). Without ``--engine`` the best engine the inputs allow is used: the hybrid with a
checkpoint on that backbone, LocDiffusion with another checkpoint, GeoCLIP without one.

With ``--images`` each photo is embedded once; a photo that cannot be read is reported on
stderr with the reason and left out, the others are predicted, and the exit status is 1. With
``--data`` the dataset's embeddings are predicted (LocDiffusion reads the unit rows; GeoCLIP
and the hybrid the raw features, ``embedding * norm``, which ``locdiff embed`` records).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainer.cli.embed import add_encoder_options, add_sha256_option

_DATA_CHUNK = 256  # embeddings predicted together (bounds the hybrid's region masks)


def add_predict_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict where photos (or an embedding dataset) were taken",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_engine_options(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images", type=Path, nargs="+", metavar="PHOTO", help="photos or folders (recursive)"
    )
    source.add_argument("--data", type=Path, metavar="TEST", help="an embedding dataset")
    p.add_argument("--out", type=Path, required=True, metavar="PRED.csv")
    add_encoder_options(p, choose_model=False)
    add_sha256_option(p)
    p.set_defaults(func=run_predict)


def add_engine_options(parser) -> None:
    """The options that pick the engine, its model files, and tune its heads (``predict`` and
    ``eval``)."""
    add = parser.add_argument
    add(
        "--engine",
        choices=["geoclip", "locdiff", "hybrid"],
        help="default: hybrid with a checkpoint on CLIP ViT-L/14, locdiff with another "
        "checkpoint, geoclip without one",
    )
    add("--checkpoint", type=Path, metavar="RUN_DIR", help="a LocDiffusion run")
    add(
        "--encoder-weights",
        type=Path,
        metavar="FILE",
        help="a local weights file of the image encoder (open_clip format, as embed --weights)",
    )
    add("--samples", type=int, default=16, help="LocDiffusion samples per photo (paper 16)")
    add("--steps", type=int, help="sampler steps (default: ddpm all, ddim 20)")
    add("--sampler", default="ddim", choices=["ddpm", "ddim"])
    add("--guidance", type=float, default=1.0, help="classifier-free guidance")
    add(
        "--best-guess",
        default="mode",
        choices=["mode", "cluster"],
        help="LocDiffusion's best guess: the mode of the network's posterior density (mode) "
        "or the centre of the densest cluster of samples (cluster)",
    )
    add("--seed", type=int, default=0)
    add("--hybrid-radius-km", type=float, default=200.0, help="LocDiff-H's radius (paper 200)")


def pipeline_config(args: argparse.Namespace):
    """The :class:`~locdiff_core.pipeline.PipelineConfig` of the command line."""
    from locdiff_core.diffusion import SamplerKind
    from locdiff_core.engines import parse_engine
    from locdiff_core.pipeline import PipelineConfig
    from locdiff_core.predictor import BestGuess, PredictorConfig

    locdiff = PredictorConfig(
        best_guess=BestGuess(args.best_guess),
        num_samples=args.samples,
        sampler=SamplerKind(args.sampler),
        num_steps=args.steps,
        guidance_scale=args.guidance,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    return PipelineConfig(
        engine=parse_engine(args.engine) if args.engine else None,
        locdiff=locdiff,
        hybrid_radius_km=args.hybrid_radius_km,
        batch_size=args.batch_size,
        num_workers=args.workers,
    )


def run_predict(args: argparse.Namespace) -> int:
    config = pipeline_config(args)
    if args.data is not None:
        return _predict_dataset(args, config)
    return _predict_images(args, config)


def load_pipeline(args: argparse.Namespace, engine):
    """The pipeline for ``engine`` (``None``: the best the checkpoint allows)."""
    from locdiff_core.pipeline import Pipeline
    from trainer.progress import ProgressBar

    bar = ProgressBar("downloading the encoder weights", unit="bytes")
    try:
        return Pipeline.load(
            engine,
            checkpoint=args.checkpoint,
            encoder_weights=args.encoder_weights,
            device=args.device,
            download=args.download,
            progress=bar,
            cache_dir=args.cache_dir,
            sha256=args.sha256,
        )
    finally:
        bar.close()  # ends a drawn line, also when the download fails


def _predict_images(args: argparse.Namespace, config) -> int:
    from locdiff_core.photo.reading import find_photos
    from trainer.predictions import PredictionRow, write_predictions
    from trainer.progress import ProgressBar

    missing = [p for p in args.images if not p.exists()]
    if missing:
        raise ValueError(f"{missing[0]}: no such photo or folder (--images)")
    paths = find_photos(args.images)
    if not paths:
        raise ValueError(f"no photos found in {', '.join(map(str, args.images))}")
    pipeline = load_pipeline(args, config.engine)
    engine = pipeline.resolve(config.engine)
    print(f"engine: {engine.label}; {len(paths)} photos", file=sys.stderr)
    bar = ProgressBar("predicting", unit="photos")
    rows, failed = [], 0
    for i, result in pipeline.predict_paths(paths, config, progress=bar):
        if isinstance(result, Exception):
            failed += 1
            print(f"{paths[i]}: {getattr(result, 'message', None) or result}", file=sys.stderr)
        else:
            rows.append(PredictionRow.from_prediction(str(paths[i]), result))
    if not rows:
        raise ValueError(f"none of the {len(paths)} photos could be read; nothing was written")
    n = write_predictions(args.out, rows)
    print(f"wrote {n} predictions to {args.out}" + (f"; {failed} photos failed" if failed else ""))
    return 1 if failed else 0


def _predict_dataset(args: argparse.Namespace, config) -> int:
    from locdiff_core.checkpoint import check_encoder
    from locdiff_core.engines import Engine
    from locdiff_core.pipeline import Pipeline
    from trainer.data import load_embeddings
    from trainer.predictions import PredictionRow, write_predictions
    from trainer.progress import ProgressBar

    data = load_embeddings(args.data)
    if config.engine in (Engine.GEOCLIP, Engine.HYBRID):  # refused before any model loads
        _check_raw_features(args.data, data, config.engine)
    pipeline = Pipeline.load(
        config.engine,
        checkpoint=args.checkpoint,
        device=args.device,
        cache_dir=args.cache_dir,
        load_encoder=False,
    )
    engine = pipeline.resolve(config.engine)
    if pipeline.predictor is not None and engine is not Engine.GEOCLIP:
        check_encoder(pipeline.predictor.config.encoder, data.encoder, str(args.data))
    if engine is Engine.LOCDIFF:
        features = data.embedding  # unit rows: what LocDiffusion reads
    else:
        features = _check_raw_features(args.data, data, engine)
    print(f"engine: {engine.label}; {len(data)} embeddings", file=sys.stderr)
    bar = ProgressBar("predicting", unit="embeddings")
    rows = []
    for start in range(0, len(data), _DATA_CHUNK):
        block = features[start : start + _DATA_CHUNK]
        for k, p in enumerate(pipeline.predict_features(block, config)):
            rows.append(PredictionRow.from_prediction(str(data.ids[start + k]), p))
        bar(len(rows), len(data))
    n = write_predictions(args.out, rows)
    print(f"wrote {n} predictions to {args.out}")
    return 0


def _check_raw_features(path: Path, data, engine):
    """The dataset's raw CLIP ViT-L/14 features, which GeoCLIP's head reads, or why not."""
    from locdiff_core.encoder_identity import describe_encoder
    from locdiff_core.engines import on_geoclip_backbone

    if not on_geoclip_backbone(data.encoder):
        raise ValueError(
            f"{path}: was embedded with {describe_encoder(data.encoder or {})}; --engine "
            f"{engine.value} reads CLIP ViT-L-14 / openai features (rebuild the dataset with "
            "`locdiff embed --model ViT-L-14 --pretrained openai`)"
        )
    return data.raw_features()
