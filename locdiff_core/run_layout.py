"""The files of a training run folder, named once: the trainer writes them and the app's
Trainer tab reads them (without importing the trainer, which loads torch), with
:func:`checkpoint_step`, the step a checkpoint was saved at, read from its header. Torch-free."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

CHECKPOINT_FILE = "checkpoint.safetensors"  # weights and the JSON config that rebuilds the model
BEST_FILE = "best.safetensors"  # the checkpoint of the best validation so far (same format)
STATE_FILE = "training_state.pt"  # what `locdiff train --resume` continues from
METRICS_FILE = "metrics.jsonl"  # one JSON object per logged step and per validation
LOG_FILE = "train.log"
STOP_FILE = "STOP"  # created to ask a run to save and stop cleanly
CONFIG_KEY = "locdiff_config"  # the checkpoint's safetensors metadata entry holding its config
_MAX_HEADER = 100 << 20  # a safetensors header is JSON; larger than this it is not ours


def model_file(path: str | os.PathLike) -> Path:
    """The checkpoint a predictor loads from ``path``: a ``.safetensors`` file itself; a run
    folder's ``best.safetensors`` (its best validation) when it has one, else its last
    ``checkpoint.safetensors``."""
    p = Path(path)
    if p.suffix == ".safetensors" and not p.is_dir():
        return p
    return p / BEST_FILE if (p / BEST_FILE).is_file() else p / CHECKPOINT_FILE


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The training step the checkpoint file ``path`` was saved at (its config's
    ``training.step``), read from the safetensors header alone; None when there is no such
    file or it does not say."""
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > _MAX_HEADER:
                return None
            header = json.loads(fh.read(size))
        step = json.loads(header["__metadata__"][CONFIG_KEY])["training"]["step"]
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None
