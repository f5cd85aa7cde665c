"""``locdiff train`` and ``locdiff predict``: the model from the command line (issue 3).

    locdiff train --data TRAIN [--val VAL] --out RUN_DIR --degree 47 --epochs 10 \\
        --batch-size 512 --seed 0 [--device cpu|cuda]
    locdiff predict --checkpoint RUN_DIR --data TEST --out PRED.csv \\
        [--samples 16 --steps 100 --sampler ddpm|ddim --seed 0]

``TRAIN``, ``VAL`` and ``TEST`` are embedding datasets (a ``.npz`` file or a folder of shards);
``PRED.csv`` is scored by ``locdiff eval``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_model_parsers(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train a LocDiffusion model on an embedding dataset", description=__doc__
    )
    train.add_argument("--data", type=Path, required=True, metavar="TRAIN")
    train.add_argument("--val", type=Path, metavar="VAL", help="validated after every epoch")
    train.add_argument("--out", type=Path, required=True, metavar="RUN_DIR")
    train.add_argument("--degree", type=int, default=47, help="SHDD degree L (paper: 15-47)")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=512)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (paper 1e-4)")
    train.add_argument(
        "--widths", default="1024,512,256", help="CS-UNet widths before the bottleneck"
    )
    train.add_argument("--bottleneck", type=int, default=128, help="paper: 32 or 128")
    train.add_argument("--dropout", type=float, default=0.3)
    train.add_argument("--loss", default="shdd_kl", choices=["shdd_kl", "mse", "cosine"])
    train.add_argument(
        "--kl-estimator",
        default="importance",
        choices=["importance", "uniform"],
        help="importance: resolves the location below the anchor spacing; uniform: the paper's",
    )
    train.add_argument("--anchors", type=int, default=2048)
    train.add_argument("--cond-drop", type=float, default=0.0, help="for classifier-free guidance")
    train.add_argument("--log-every", type=int, default=50)
    train.add_argument("--max-steps", type=int, help="stop after this many steps")
    train.set_defaults(func=run_train)

    predict = subparsers.add_parser(
        "predict", help="predict locations for an embedding dataset", description=__doc__
    )
    predict.add_argument("--checkpoint", type=Path, required=True, metavar="RUN_DIR")
    predict.add_argument("--data", type=Path, required=True, metavar="TEST")
    predict.add_argument("--out", type=Path, required=True, metavar="PRED.csv")
    predict.add_argument("--samples", type=int, default=16, help="samples per input (paper 16)")
    predict.add_argument("--steps", type=int, help="sampler steps (default: ddpm all, ddim 20)")
    predict.add_argument("--sampler", default="ddim", choices=["ddpm", "ddim"])
    predict.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance")
    predict.add_argument("--seed", type=int, default=0)
    predict.add_argument("--device", default="cpu")
    predict.add_argument("--batch-size", type=int, default=32, help="inputs sampled together")
    predict.set_defaults(func=run_predict)


def run_train(args: argparse.Namespace) -> int:
    from locdiff_core.diffusion import DiffusionConfig, LossKind
    from locdiff_core.shdd import KLEstimator
    from trainer.train import TrainConfig, TrainingDivergedError, train

    try:
        widths = tuple(int(w) for w in args.widths.split(",") if w.strip())
    except ValueError as exc:
        raise ValueError(f"--widths must be comma-separated integers, got {args.widths!r}") from exc
    config = TrainConfig(
        data=args.data,
        val=args.val,
        out=args.out,
        degree=args.degree,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        lr=args.lr,
        widths=widths,
        dim_bottleneck=args.bottleneck,
        dropout=args.dropout,
        diffusion=DiffusionConfig(
            loss=LossKind(args.loss),
            kl_estimator=KLEstimator(args.kl_estimator),
            num_anchors=args.anchors,
            cond_drop_prob=args.cond_drop,
        ),
        log_every=args.log_every,
        max_steps=args.max_steps,
    )
    try:
        path = train(config)
    except TrainingDivergedError as exc:
        print(f"locdiff train: error: {exc}", file=sys.stderr)
        return 1
    print(f"checkpoint: {path}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from locdiff_core.checkpoint import check_encoder
    from locdiff_core.diffusion import SamplerKind
    from locdiff_core.predictor import Predictor, PredictorConfig
    from trainer.data import load_embeddings
    from trainer.predictions import PredictionRow, write_predictions

    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    data = load_embeddings(args.data)
    check_encoder(predictor.config.encoder, data.encoder, str(args.data))
    config = PredictorConfig(
        num_samples=args.samples,
        sampler=SamplerKind(args.sampler),
        num_steps=args.steps,
        guidance_scale=args.guidance,
        seed=args.seed,
        batch_size=args.batch_size,
    )

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\rpredicting: {100 * done / total:5.1f}%", end="", file=sys.stderr)

    rows = []
    for i, p in predictor.iter_predict(data.embedding, config, progress=progress):
        rows.append(
            PredictionRow(
                id=str(data.ids[i]),
                best_lat=p.best[0],
                best_lon=p.best[1],
                centre_lat=p.centre[0],
                centre_lon=p.centre[1],
                radius50_km=p.radius50_km,
                radius90_km=p.radius90_km,
                candidates=tuple((c.lat, c.lon, c.share) for c in p.candidates[:3]),
            )
        )
    n = write_predictions(args.out, rows)
    print(f"wrote {n} predictions to {args.out}")
    return 0
