"""``locdiff train``: the model from the command line (its options are defined in
:mod:`locdiff_core.train_options`, which the app's Trainer tab checks against too);
``locdiff predict`` lives in :mod:`trainer.cli.predict`.

    locdiff train --data TRAIN [--val VAL | --val-fraction F --val-min-km KM] --out RUN_DIR \\
        --degree 47 --epochs 10 --batch-size 512 --seed 0 [--device cpu|cuda]
    torchrun --standalone --nproc-per-node N -m trainer train ...   (same options)
    locdiff train --resume RUN_DIR [--epochs MORE ...]
    locdiff predict ...   (trainer.cli.predict)

``TRAIN``, ``VAL`` and ``TEST`` are embedding datasets (a ``.npz`` file or a folder of shards);
``PRED.csv`` is scored by ``locdiff eval``. Multi-GPU and multi-node commands:
:mod:`trainer.distributed`. ``--resume`` reuses the run's saved settings; options given with it
may only change how the run proceeds (device, accumulation, logging and checkpoint intervals,
limits; the epoch count under the constant schedule), not what it computes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from locdiff_core.train_options import add_train_options


def _add_train_parser(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train a LocDiffusion model on an embedding dataset", description=__doc__
    )
    add_train_options(train)
    train.set_defaults(func=run_train)


#: CLI option -> TrainConfig field, where the names differ.
_FIELD = {"bottleneck": "dim_bottleneck"}
#: CLI option -> DiffusionConfig field.
_DIFFUSION = {
    "loss": "loss",
    "kl_estimator": "kl_estimator",
    "anchors": "num_anchors",
    "cond_drop": "cond_drop_prob",
    "cond_noise": "cond_noise",
}


def train_config(args: argparse.Namespace):
    """The TrainConfig of a command line: the options given over TrainConfig's defaults, or
    over the run's saved settings with ``--resume``."""
    from locdiff_core.diffusion import LossKind
    from locdiff_core.shdd import KLEstimator
    from trainer.config import LRSchedule, Precision, TrainConfig, with_recipe
    from trainer.run_state import read_saved_config

    given = {}
    skip = {"command", "func", "resume", "recipe", *_DIFFUSION}
    for name, value in vars(args).items():
        if name not in skip and value is not None:
            given[_FIELD.get(name, name)] = value
    if "cond_rms_norm" in given:
        given["cond_rms_norm"] = bool(given["cond_rms_norm"])
    if "widths" in given:
        try:
            given["widths"] = tuple(int(w) for w in given["widths"].split(",") if w.strip())
        except ValueError as exc:
            raise ValueError(
                f"--widths must be comma-separated integers, got {args.widths!r}"
            ) from exc
    if "precision" in given:
        given["precision"] = Precision(given["precision"])
    if "lr_schedule" in given:
        given["lr_schedule"] = LRSchedule(given["lr_schedule"])
    diffusion = {
        _DIFFUSION[k]: getattr(args, k) for k in _DIFFUSION if getattr(args, k) is not None
    }
    if "loss" in diffusion:
        diffusion["loss"] = LossKind(diffusion["loss"])
    if "kl_estimator" in diffusion:
        diffusion["kl_estimator"] = KLEstimator(diffusion["kl_estimator"])
    if args.resume is not None:
        if args.out is not None and args.out.resolve() != args.resume.resolve():
            raise ValueError(f"--out {args.out} differs from --resume {args.resume}; drop --out")
        if args.recipe is not None:
            raise ValueError("a resumed run keeps its settings; drop --recipe")
        base = read_saved_config(args.resume)
        given["out"] = args.resume
    else:
        if args.data is None or args.out is None:
            raise ValueError("a new run needs --data TRAIN and --out RUN_DIR (or --resume RUN_DIR)")
        base = with_recipe(TrainConfig(data=args.data, out=args.out), args.recipe or "default")
    given["diffusion"] = dataclasses.replace(base.diffusion, **diffusion)
    return dataclasses.replace(base, **given)


def add_model_parsers(subparsers) -> None:
    _add_train_parser(subparsers)
    from trainer.cli.predict import add_predict_parser

    add_predict_parser(subparsers)


def run_train(args: argparse.Namespace) -> int:
    from trainer.train import TrainingDivergedError, train

    config = train_config(args)
    try:
        path = train(config, resume=args.resume is not None)
    except TrainingDivergedError as exc:
        print(f"locdiff train: error: {exc}", file=sys.stderr)
        return 1
    print(f"checkpoint: {path}")
    return 0
