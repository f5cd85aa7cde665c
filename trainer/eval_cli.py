"""``locdiff eval``: accuracy, median error and GeoScore of a prediction CSV (issue 3).

    locdiff eval --pred PRED.csv --data TEST [--json]

``PRED.csv`` comes from ``locdiff predict``; ``TEST`` is the embedding dataset (a ``.npz`` file
or a folder of shards) it was predicted on. Prints a table, or the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``eval`` subcommand on ``parser.add_subparsers()``'s result."""
    parser = subparsers.add_parser(
        "eval",
        help="score a prediction CSV: accuracy within 1-2500 km, median km, GeoScore",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--pred", type=Path, required=True, metavar="PRED.csv", help="from `locdiff predict`"
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="TEST",
        help="the dataset predicted on: a .npz file or a folder of .npz shards",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_eval)
    return parser


def run_eval(args: argparse.Namespace) -> int:
    # imported here so that `locdiff --help` does not wait for torch
    from trainer.evaluate import evaluate, format_table

    result = evaluate(args.pred, args.data)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
