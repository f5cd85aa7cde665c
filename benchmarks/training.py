"""Training-side throughput: image embedding and ``locdiff train``.

    python benchmarks/training.py [--models ViT-B-32,ViT-L-14] [--images 8] [--batch-size 8]
        [--photo-px 4032x3024] [--device cpu] [--stages embed,train] [--procs 1,2]
        [--degrees 23,47] [--paper-epoch]

Two stages: image embedding (below) and the training throughput of ``locdiff train`` in one
process and under torchrun (``train_speed.py``, which also runs on its own).

Image embedding, the first stage of building a dataset (``locdiff embed``): images per second
through the frozen image encoder in one process (no DataLoader workers), with random weights of
each architecture's shape, so nothing is downloaded. Three figures per model:

* ``decode``: photos decoded (JPEG draft mode, EXIF orientation) and preprocessed, no model
  (``decode full``: the same with every pixel decoded, for comparison);
* ``encoder``: the image tower alone on preprocessed pixels;
* ``end to end``: :meth:`ImageEncoder.embed_paths` from JPEG files on disk.

The photos are generated JPEGs of ``--photo-px`` (a 12 MP phone photo by default). Each
measurement is one function returning a table row, and :func:`tables.print_records` prints rows,
so other stages (training throughput) add a function and a table.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import train_speed  # a sibling script
from photo_io import best_rate  # a sibling script
from PIL import Image
from tables import print_records  # a sibling script

from locdiff_core.image_encoder import ImageEncoder
from locdiff_core.photo.reading import open_image


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """``count`` JPEGs (quality 90) of smooth gradients with grain, like a photo to a codec."""
    width, height = size
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 1.0, width)[None, :]
    y = np.linspace(0.0, 1.0, height)[:, None]
    paths = []
    for i in range(count):
        phase = i / max(count, 1)
        base = np.stack([x * y, (1 - x) * (y + phase) % 1.0, (x + phase) % 1.0 * (1 - y)], -1)
        pixels = base * 255 + rng.normal(0.0, 12.0, (height, width, 3))
        path = folder / f"photo_{i:03d}.jpg"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def embed_throughput(
    model: str, photos: list[Path], *, batch_size: int, device: str, repeats: int
) -> dict[str, str]:
    """One table row: decode, encoder and end-to-end images per second for ``model``."""
    encoder = ImageEncoder.random_init(model, device=device)
    params = sum(p.numel() for p in encoder.tower.parameters())

    def decode(min_size: int | None) -> Callable[[], int]:
        def run() -> int:
            for path in photos:
                encoder.pixels(open_image(path, min_size=min_size))
            return len(photos)

        return run

    pixels = torch.stack(
        [encoder.pixels(open_image(p, min_size=encoder.decode_min_px)) for p in photos]
    )

    def forward() -> int:
        for start in range(0, len(pixels), batch_size):
            encoder.embed_batch(pixels[start : start + batch_size])
        if encoder.device.type == "cuda":
            torch.cuda.synchronize()
        return len(pixels)

    def end_to_end() -> int:
        return sum(1 for _ in encoder.embed_paths(photos, batch_size=batch_size))

    encoder.embed_batch(pixels[:batch_size])  # warm up
    return {
        "model": model,
        "params": f"{params / 1e6:.0f} M",
        "dim": str(encoder.dim),
        "device": str(encoder.device),
        "batch": str(batch_size),
        "decode full img/s": f"{best_rate(decode(None), repeats):.1f}",
        "decode img/s": f"{best_rate(decode(encoder.decode_min_px), repeats):.1f}",
        "encoder img/s": f"{best_rate(forward, repeats):.2f}",
        "end to end img/s": f"{best_rate(end_to_end, repeats):.2f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ViT-B-32,ViT-L-14")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--photo-px", default="4032x3024", help="WIDTHxHEIGHT of the photos")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--stages", default="embed,train", help="embed, train or both")
    parser.add_argument("--procs", default="1,2", help="training: process counts")
    parser.add_argument("--degrees", default="23,47", help="training: degrees L")
    parser.add_argument("--paper-epoch", action="store_true", help="training: the paper's epoch")
    args = parser.parse_args()
    stages = {s.strip() for s in args.stages.split(",")}
    if "embed" in stages:
        embedding(args)
    if "train" in stages:
        train_speed.run(args.device, args.procs, args.degrees, 512, None, args.paper_epoch)


def embedding(args: argparse.Namespace) -> None:
    width, height = (int(v) for v in args.photo_px.lower().split("x"))
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, one process, random weights"
    )
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(Path(tmp), args.images, (width, height))
        rows = [
            embed_throughput(
                m.strip(),
                photos,
                batch_size=args.batch_size,
                device=args.device,
                repeats=args.repeats,
            )
            for m in args.models.split(",")
        ]
    print_records(f"Image embedding, {args.images} JPEGs of {width} x {height} px", rows)


if __name__ == "__main__":
    main()
