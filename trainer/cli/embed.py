"""``locdiff embed`` and ``locdiff download-encoder``: datasets from images on the command line.

    locdiff embed (--photos DIR | --csv FILE --images ROOT) --out DATASET_DIR
        [--model ViT-L-14 --pretrained openai | --weights FILE] [--download] [--batch-size 64]
        [--workers N] [--device auto] [--shard-size 4096] [--cache-dir DIR] [--retry-failed]
        [--allow-outside-root] [--overwrite]
        [--sha256 HEX]
    torchrun --standalone --nproc-per-node N -m trainer embed ...   # N processes (GPUs)
    locdiff download-encoder [--model ViT-L-14] [--pretrained openai] [--cache-dir DIR]
        [--sha256 HEX] [--force]

``--model`` is an open_clip architecture or a model-config .json; weights come from a pretrained
tag or a local file, and are downloaded only with ``--download`` (or by ``download-encoder``).
An existing dataset is resumed and only added to; ``--overwrite`` deletes its shards and
manifest first. Images are read only inside ``--photos``/``--images`` unless
``--allow-outside-root``.
Under ``torchrun`` each of the N processes embeds every N-th input still to do (in input order)
into ``DATASET_DIR/ranks/rank-NNN`` on its own GPU, and rank 0 merges the parts into the one
dataset and manifest at the end; a rerun with any number of processes (or one) skips what the
dataset and its parts record and finishes the merge an interruption left.
A download is accepted only once its sha256 is checked: against ``--sha256``, else LocDiff's
table of known files, else the Hub's announcement; a server that announces none is refused.
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
            "--pretrained",
            help="open_clip pretrained tag (default openai); with --weights, the tag those "
            "weights are, if any",
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


def _sha256(text: str) -> str:
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a sha256 (64 hexadecimal digits)")
    return text.lower()


def add_sha256_option(parser: argparse.ArgumentParser) -> None:
    """``--sha256 HEX``: the checksum a downloaded weights file must have (``embed``,
    ``predict`` and ``download-encoder``)."""
    parser.add_argument(
        "--sha256",
        type=_sha256,
        metavar="HEX",
        help="sha256 the downloaded weights must have (needed when the server announces none)",
    )


def add_embed_parsers(subparsers) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="build an embedding dataset from geotagged photos or a location CSV",
        description="Build an embedding dataset (shards and a manifest) from geotagged photos or "
        "a location CSV; a rerun resumes where the last one stopped.",
    )
    source = embed.add_mutually_exclusive_group(required=True)
    source.add_argument("--photos", type=Path, metavar="DIR", help="a folder of photos with GPS")
    source.add_argument("--csv", type=Path, metavar="FILE", help="IMG_ID,LAT,LON rows")
    embed.add_argument("--images", type=Path, metavar="ROOT", help="the folder of --csv's images")
    embed.add_argument("--out", type=Path, required=True, metavar="DATASET_DIR")
    add_encoder_options(embed)
    add_sha256_option(embed)
    embed.add_argument("--shard-size", type=int, default=4096, help="embeddings per shard")
    embed.add_argument(
        "--retry-failed", action="store_true", help="look again at files recorded as failed"
    )
    embed.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="read CSV ids that are absolute, hold '..' or lead through a symbolic link outside "
        "--images, and photos linked into --photos from elsewhere (refused by default)",
    )
    embed.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the shards and manifest already in --out and build the dataset again "
        "(without it a rerun resumes and adds to them)",
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
    add_sha256_option(fetch)
    fetch.add_argument(
        "--force", action="store_true", help="download even if already here (or damaged)"
    )
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
        encoder = ImageEncoder.load(
            encoder_config(args), download=args.download, progress=bar, sha256=args.sha256
        )
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
        allow_outside_root=args.allow_outside_root,
        overwrite=args.overwrite,
    )
    config.validate()  # before the encoder loads: a typo should not cost a model load
    share, env = _torchrun_share(args)
    try:
        encoder = load_encoder(args)
        bars = StageBars() if share.rank == 0 else None
        try:
            summary = build_dataset(config, encoder, progress=bars, share=share)
            if env is not None:  # every process is past its last message before any closes
                import torch.distributed as dist

                dist.barrier()
        finally:
            if bars is not None:
                bars.close()
    finally:
        if env is not None:
            from trainer import distributed

            distributed.teardown(env)
    if share.rank > 0:
        new = ", ".join(f"{summary.new[o]} {o.value}" for o in Outcome if summary.new[o])
        print(f"rank {share.rank}: {new or 'nothing new'}")
        return 0
    for note in summary.notes:
        print(f"note: {note}")
    counts = ", ".join(f"{summary.counts[o]} {o.value}" for o in Outcome)
    new = ", ".join(f"{summary.new[o]} {o.value}" for o in Outcome if summary.new[o])
    print(f"{args.out}: {counts}")
    print(f"this run: {new or 'nothing new'}; {summary.skipped} already recorded were skipped")
    for entry in summary.problems:
        print(f"  {entry.key}: {entry.outcome.value}: {entry.reason}")
    print(f"manifest: {args.out / MANIFEST}")
    return 0 if summary.counts[Outcome.EMBEDDED] else 1


def _torchrun_share(args: argparse.Namespace):
    """This process's share of the inputs when ``torchrun`` started several (``WORLD_SIZE``):
    a gloo process group carries the agreement between them; with ``--device auto`` or
    ``cuda`` each process takes ``cuda:LOCAL_RANK``. One process: ``Share()`` and no group."""
    from trainer.embed import Share

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Share(), None
    import torch
    import torch.distributed as dist

    from trainer import distributed

    env = distributed.setup("cpu")

    def agree(message: str | None) -> str | None:
        gathered: list[str | None] = [None] * env.world_size
        dist.all_gather_object(gathered, message)
        return next((m for m in gathered if m), None)

    if args.device in ("auto", "cuda") and torch.cuda.is_available():
        args.device = f"cuda:{env.local_rank % torch.cuda.device_count()}"
    return Share(env.rank, env.world_size, agree), env


def run_download(args: argparse.Namespace) -> int:
    from locdiff_core.image_encoder import (
        EncoderConfig,
        WeightsNotFoundError,
        download_weights,
        locate_weights,
    )
    from trainer.progress import ProgressBar

    config = EncoderConfig(args.model, args.pretrained, cache_dir=args.cache_dir, device="cpu")
    if not args.force:
        try:
            found = locate_weights(config, sha256=args.sha256)  # a damaged file: says --force
        except WeightsNotFoundError:
            pass
        else:
            if found.sha256:
                print(f"already here: {found.path} (sha256 checked)")
            else:
                print(
                    f"already here: {found.path}; its sha256 was not checked (none is known for "
                    "it): pass --sha256 HEX to check it, or --force to download it again"
                )
            return 0
    bar = ProgressBar(f"{args.model} / {args.pretrained}", unit="bytes")
    try:
        path = download_weights(config, bar, sha256=args.sha256)
    finally:
        bar.close()
    print(f"downloaded: {path}")
    return 0
