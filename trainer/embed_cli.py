"""``locdiff embed`` and ``locdiff download-encoder``: datasets from images on the command line.

    locdiff embed (--photos DIR | --csv FILE --images ROOT) --out DATASET_DIR
        [--model ViT-L-14 --pretrained openai | --weights FILE] [--download] [--batch-size 64]
        [--workers N] [--device auto] [--shard-size 4096] [--cache-dir DIR] [--retry-failed]
    locdiff download-encoder [--model ViT-L-14] [--pretrained openai] [--cache-dir DIR]

``--model`` is an open_clip architecture or a model-config .json; weights come from a pretrained
tag or a local file, and are downloaded only with ``--download`` (or by ``download-encoder``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

_DEFAULT_WORKERS = max(0, min(8, (os.cpu_count() or 1) - 1))


def add_encoder_options(parser: argparse.ArgumentParser, *, choose_model: bool = True) -> None:
    """The options that pick, place and fetch the image encoder."""
    if choose_model:
        parser.add_argument(
            "--model",
            default="ViT-L-14",
            help="open_clip model or model-config .json "
            "(default ViT-L-14, the paper's; ViT-B-32 is lighter)",
        )
        parser.add_argument(
            "--pretrained", help="open_clip pretrained tag (default openai; none with --weights)"
        )
        parser.add_argument("--weights", type=Path, metavar="FILE", help="local weights file")
    parser.add_argument(
        "--download", action="store_true", help="download missing encoder weights (once)"
    )
    parser.add_argument("--cache-dir", type=Path, metavar="DIR", help="where weights are kept")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--batch-size", type=int, default=64, help="images embedded together")
    parser.add_argument(
        "--workers",
        type=int,
        default=_DEFAULT_WORKERS,
        help=f"processes decoding photos (default {_DEFAULT_WORKERS})",
    )


def add_embed_parsers(subparsers) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="build an embedding dataset from geotagged photos or a location CSV",
        description=__doc__.split("\n\n")[0],
    )
    source = embed.add_mutually_exclusive_group(required=True)
    source.add_argument("--photos", type=Path, metavar="DIR", help="a folder of photos with GPS")
    source.add_argument("--csv", type=Path, metavar="FILE", help="IMG_ID,LAT,LON rows")
    embed.add_argument("--images", type=Path, metavar="ROOT", help="the folder of --csv's images")
    embed.add_argument("--out", type=Path, required=True, metavar="DATASET_DIR")
    add_encoder_options(embed)
    embed.add_argument("--shard-size", type=int, default=4096, help="embeddings per shard")
    embed.add_argument(
        "--retry-failed", action="store_true", help="look again at files recorded as failed"
    )
    embed.set_defaults(func=run_embed)

    fetch = subparsers.add_parser(
        "download-encoder",
        help="download the weights of an open_clip image encoder",
        description="Download the weights of a pretrained tag into LocDiff's cache folder "
        "(from $HF_ENDPOINT, default the Hugging Face Hub).",
    )
    fetch.add_argument("--model", default="ViT-L-14")
    fetch.add_argument("--pretrained", default="openai")
    fetch.add_argument("--cache-dir", type=Path, metavar="DIR")
    fetch.add_argument("--force", action="store_true", help="download even if already here")
    fetch.set_defaults(func=run_download)


def encoder_config(args: argparse.Namespace):
    """The :class:`EncoderConfig` the options ask for."""
    from locdiff_core.image_encoder import EncoderConfig, is_config_file

    pretrained = args.pretrained
    if pretrained is None:
        custom = args.weights is not None or is_config_file(args.model)
        pretrained = None if custom else "openai"
    elif pretrained.lower() == "none":
        pretrained = None
    return EncoderConfig(args.model, pretrained, args.weights, args.device, args.cache_dir)


def load_encoder(args: argparse.Namespace):
    from locdiff_core.image_encoder import ImageEncoder
    from trainer.progress import ProgressBar

    bar = ProgressBar("downloading weights", unit="bytes")
    try:
        encoder = ImageEncoder.load(encoder_config(args), download=args.download, progress=bar)
    finally:
        bar.close()
    print(f"encoder: {encoder!r}", file=sys.stderr)
    return encoder


def run_embed(args: argparse.Namespace) -> int:
    from trainer.embed import EmbedConfig, build_dataset
    from trainer.manifest import MANIFEST, Outcome
    from trainer.progress import StageBars

    config = EmbedConfig(
        out=args.out,
        photos=args.photos,
        csv=args.csv,
        images=args.images,
        batch_size=args.batch_size,
        num_workers=args.workers,
        shard_size=args.shard_size,
        retry_failed=args.retry_failed,
    )
    config.validate()  # before the encoder loads: a typo should not cost a model load
    encoder = load_encoder(args)
    bars = StageBars()
    try:
        summary = build_dataset(config, encoder, progress=bars)
    finally:
        bars.close()
    counts = ", ".join(f"{summary.counts[o]} {o.value}" for o in Outcome)
    new = ", ".join(f"{summary.new[o]} {o.value}" for o in Outcome if summary.new[o])
    print(f"{args.out}: {counts}")
    print(f"this run: {new or 'nothing new'}; {summary.skipped} already recorded were skipped")
    for entry in summary.problems:
        print(f"  {entry.key}: {entry.outcome.value}: {entry.reason}")
    print(f"manifest: {args.out / MANIFEST}")
    return 0 if summary.counts[Outcome.EMBEDDED] else 1


def run_download(args: argparse.Namespace) -> int:
    from locdiff_core.image_encoder import (
        EncoderConfig,
        WeightsNotFoundError,
        download_weights,
        find_weights,
    )
    from trainer.progress import ProgressBar

    config = EncoderConfig(args.model, args.pretrained, cache_dir=args.cache_dir, device="cpu")
    if not args.force:
        try:
            print(f"already here: {find_weights(config)}")
            return 0
        except WeightsNotFoundError:
            pass
    bar = ProgressBar(f"{args.model} / {args.pretrained}", unit="bytes")
    try:
        path = download_weights(config, bar)
    finally:
        bar.close()
    print(f"downloaded: {path}")
    return 0
