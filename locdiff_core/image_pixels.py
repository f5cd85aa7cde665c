"""Photos decoded and preprocessed for the image encoder, as a torch ``Dataset`` that a
``DataLoader`` runs in worker processes
(:meth:`locdiff_core.image_encoder.ImageEncoder.embed_paths`). Failures travel as plain
tuples: a ``PhotoError`` does not pickle across processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from locdiff_core.photo.errors import call_for_file
from locdiff_core.photo.reading import open_image


def stack_good(batch: list) -> tuple[list, torch.Tensor | None]:
    """The DataLoader's collation, run in its workers: ``(items without their pixels, the
    readable items' pixels stacked in order)``, so one tensor a batch crosses to the main
    process (and is pinned there for a CUDA copy). A batch with no readable photo gives
    ``None``."""
    good = [px for _, px, _ in batch if px is not None]
    return [(i, px is not None, error) for i, px, error in batch], (
        torch.stack(good) if good else None
    )


class PhotoPixels(torch.utils.data.Dataset):
    """Item ``i``: ``(i, pixels, None)``, or ``(i, None, (error kind, message))`` for a photo
    that cannot be read. ``make_transform(preprocess)`` builds the encoder's transform, once per
    worker process."""

    def __init__(
        self,
        paths: list[Path],
        preprocess: dict,
        decode_min_px: int,
        make_transform: Callable[[dict], Callable],
    ) -> None:
        self.paths, self.preprocess, self.decode_min_px = paths, preprocess, decode_min_px
        self.make_transform = make_transform
        self._transform = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_transform": None}

    def _pixels(self, path: Path) -> torch.Tensor:
        if self._transform is None:
            self._transform = self.make_transform(self.preprocess)
        return self._transform(open_image(path, min_size=self.decode_min_px))

    def __getitem__(self, i: int):
        result = call_for_file(self.paths[i], self._pixels)
        if result.ok:
            return i, result.value, None
        return i, None, (result.error.kind.value, result.error.message)
