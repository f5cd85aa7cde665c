"""The files of a training run folder, named once: the trainer writes them and the app's
Trainer tab reads them (without importing the trainer, which loads torch), with
:func:`checkpoint_step`, the step a checkpoint was saved at, read from its header. Torch-free."""

from __future__ import annotations

import json
import os
import struct

CHECKPOINT_FILE = "checkpoint.safetensors"  # weights and the JSON config that rebuilds the model
STATE_FILE = "training_state.pt"  # what `locdiff train --resume` continues from
METRICS_FILE = "metrics.jsonl"  # one JSON object per logged step and per validation
LOG_FILE = "train.log"
STOP_FILE = "STOP"  # created to ask a run to save and stop cleanly
CONFIG_KEY = "locdiff_config"  # the checkpoint's safetensors metadata entry holding its config
_MAX_HEADER = 100 << 20  # a safetensors header is JSON; larger than this it is not ours


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
