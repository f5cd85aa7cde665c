"""``locdiff eval``: accuracy, median error and GeoScore of predictions or of a checkpoint.

    locdiff eval --pred PRED.csv --data TEST [--json]
    locdiff eval [--engine geoclip|locdiff|hybrid] [--checkpoint RUN_DIR] --csv TEST.csv \
        --images ROOT [--encoder-weights FILE]

The first form scores a prediction CSV from ``locdiff predict`` against the embedding dataset
(a ``.npz`` file or a folder of shards) it was predicted on. The second runs end to end: it
predicts the CSV's images (``IMG_ID, LAT, LON`` rows, as in Im2GPS3k) with an engine (as
``locdiff predict``: GeoCLIP needs no checkpoint, LocDiffusion and the hybrid do; without
``--engine`` the best the checkpoint allows), scores, and says how many images were skipped and
why. Both print a table, or the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer.cli.embed import add_encoder_options
from trainer.cli.predict import add_engine_options


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``eval`` subcommand on ``parser.add_subparsers()``'s result."""
    parser = subparsers.add_parser(
        "eval",
        help="score predictions, or a checkpoint on images (accuracy, median, GeoScore)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--pred", type=Path, metavar="PRED.csv", help="from `locdiff predict`")
    parser.add_argument(
        "--data",
        type=Path,
        metavar="TEST",
        help="the dataset predicted on: a .npz file or a folder of .npz shards",
    )
    images = parser.add_argument_group("end to end from images")
    images.add_argument("--csv", type=Path, metavar="TEST.csv", help="IMG_ID,LAT,LON rows")
    images.add_argument("--images", type=Path, metavar="ROOT", help="the folder of the images")
    add_encoder_options(images, choose_model=False)
    add_engine_options(images)
    images.add_argument("--out", type=Path, metavar="PRED.csv", help="also save the predictions")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_eval)
    return parser


def run_eval(args: argparse.Namespace) -> int:
    # imported here so that `locdiff --help` does not wait for torch
    from trainer.evaluate import evaluate, format_table

    from_images = [args.checkpoint, args.csv, args.images, args.engine]
    if args.pred is not None or args.data is not None:
        if args.pred is None or args.data is None or any(a is not None for a in from_images):
            raise ValueError(
                "give --pred PRED.csv --data TEST, or --csv TEST.csv --images ROOT (with "
                "--engine and --checkpoint RUN_DIR as needed)"
            )
        result = evaluate(args.pred, args.data)
        print(json.dumps(result, indent=2) if args.json else format_table(result))
        return 0
    if args.csv is None or args.images is None:
        raise ValueError(
            "give --csv TEST.csv --images ROOT (with --engine and --checkpoint RUN_DIR as "
            "needed), or --pred PRED.csv --data TEST"
        )
    return _eval_images(args)


def _eval_images(args: argparse.Namespace) -> int:
    from trainer.cli.predict import pipeline_config
    from trainer.evaluate import evaluate_images, format_table
    from trainer.predictions import write_predictions
    from trainer.progress import StageBars

    config = pipeline_config(args)
    bars = StageBars(units={"predicting": "photos"})
    try:
        result = evaluate_images(
            args.checkpoint,
            args.csv,
            args.images,
            engine=config.engine,
            encoder_weights=args.encoder_weights,
            device=args.device,
            download=args.download,
            cache_dir=args.cache_dir,
            config=config,
            progress=bars,
        )
    finally:
        bars.close()
    if args.out is not None:
        write_predictions(args.out, result.predictions)
    skipped = sum(result.skipped.values())
    if args.json:
        payload = {**result.scores, "images": result.total, "skipped": dict(result.skipped)}
        payload["engine"] = result.engine
        print(json.dumps(payload, indent=2))
    else:
        print(format_table(result.scores))
        reasons = ", ".join(f"{n} {k}" for k, n in sorted(result.skipped.items()))
        print(f"engine {result.engine}: ", end="")
        print(f"{result.total - skipped} of {result.total} images scored", end="")
        print(f"; skipped {reasons}" if skipped else "")
        for problem in result.problems:
            print(f"  {problem}")
    if args.out is not None:
        print(f"predictions: {args.out}", file=sys.stderr)
    return 0
