"""``locdiff dataset info|convert``: look at an embedding dataset, and make it mappable.

    locdiff dataset info DATASET       # rows, width, shards, size, encoder
    locdiff dataset convert DATASET    # rewrite compressed shards so training can map them

Training reads datasets memory-mapped (:mod:`trainer.mapped_data`), which needs the shards'
arrays stored uncompressed, as ``locdiff embed`` and ``numpy.savez`` write them. ``convert``
rewrites shards written by ``numpy.savez_compressed`` once, each atomically and checked by
reading it back; shards that are already stored are left as they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_dataset_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``dataset info`` and ``dataset convert`` on ``add_subparsers()``'s result."""
    parser = subparsers.add_parser(
        "dataset",
        help="show an embedding dataset, or convert it for mapped training",
        description=__doc__.split("\n\n")[0],
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="rows, width, shards, size and encoder")
    info.add_argument("path", type=Path, metavar="DATASET", help="a .npz file or shard folder")
    info.set_defaults(func=run_info)
    convert = actions.add_parser(
        "convert", help="rewrite compressed shards uncompressed, so training can map them"
    )
    convert.add_argument("path", type=Path, metavar="DATASET", help="a .npz file or shard folder")
    convert.set_defaults(func=run_convert)
    return parser


def run_info(args: argparse.Namespace) -> int:
    from trainer.mapped_data import describe, open_embeddings

    facts = describe(open_embeddings(args.path))
    print(f"{args.path}: {facts['rows']:,} rows of width {facts['dim']} ({facts['dtype']})")
    print(f"  shards: {facts['shards']:,}, {facts['bytes'] / 1e6:,.1f} MB on disk")
    print(f"  encoder: {facts['encoder'] or 'not recorded'}")
    print(f"  raw feature lengths (norm): {'yes' if facts['norm'] else 'no'}")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from trainer.mapped_data import convert_dataset

    done = convert_dataset(args.path)
    changed = [c for c in done if c.converted]
    for c in changed:
        print(f"converted {c.file}")
    print(
        f"{args.path}: {len(changed)} of {len(done)} shard(s) converted"
        + ("; the dataset can be mapped now" if changed else "; nothing to do")
    )
    return 0
