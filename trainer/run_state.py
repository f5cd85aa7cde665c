"""A run folder and its resumable state (``locdiff train --resume RUN_DIR``).

Beside ``checkpoint.safetensors`` (the model a predictor loads) every save writes
``training_state.pt``: the step, the :class:`~trainer.config.TrainConfig` (JSON), a
fingerprint of the training rows, the model's weights and Adam's state (and, with
``ema_decay``, the weight average of :mod:`trainer.ema`), and the
:func:`~locdiff_core.checkpoint.content_sha256` of all of these. It holds tensors and plain
values only and is read with ``torch.load(weights_only=True)``, so it can never run code;
reading it checks the sha256 (a state damaged on disk is refused, naming the file) and that
every tensor is finite. A state without a sha256 (saved by an older locdiff) is read unchecked,
with a note in the log.
Both files are written atomically, the checkpoint first; a resume reads the state alone (it
carries the weights too), so a crash between the two writes costs steps, never consistency.

Nothing else needs saving: the learning rate is a function of the step, and every random
number of a step is drawn from generators seeded by (seed, step) (data order: the epoch's
shuffle; diffusion noise and KL anchors: the step's global batch) or (seed, step, rank)
(dropout masks). The data position is the step itself: step ``s`` trains on rows
``s mod steps_per_epoch`` of epoch ``s // steps_per_epoch``.

:func:`open_run` prepares the folder on rank 0 (fresh run or resume, validation split) and
hands what the other processes need to them through the process group.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from locdiff_core.atomic_file import atomic_write
from locdiff_core.checkpoint import (
    check_encoder,
    content_sha256,
    damaged_message,
    nonfinite_problem,
    read_config,
)
from locdiff_core.run_layout import CHECKPOINT_FILE, METRICS_FILE, STATE_FILE
from trainer import distributed
from trainer.config import TrainConfig, resume_mismatches
from trainer.data import EmbeddingSet, load_embeddings
from trainer.split import SPLIT_FILE, Split, drop_near, read_split, split_by_distance, write_split

_FORMAT = "locdiff-training-state"
_VERSION = 1
_PIECE = 200_000  # ids hashed at a time


@dataclass(frozen=True)
class TrainingState:
    step: int  # optimiser steps done
    config: TrainConfig
    fingerprint: dict  # of the training rows (see fingerprint())
    model: dict[str, Tensor]
    optimizer: dict
    checked: bool = True  # False: saved without a sha256, so damage could not be detected
    best: dict | None = None  # the best validation so far: step, median_km, stale (see train)
    ema: dict[str, Tensor] | None = None  # the weight average (trainer.ema), with ema_decay


def fingerprint(ids, rows: np.ndarray, dim: int) -> dict:
    """Identifies the training rows by content: count, width and a sha256 of their ids in
    order, joined by newlines (``ids`` an array or a mapped column, read in pieces)."""
    digest = hashlib.sha256()
    for n, start in enumerate(range(0, len(rows), _PIECE)):
        piece = np.asarray(ids[rows[start : start + _PIECE]]).tolist()
        digest.update((("\n" if n else "") + "\n".join(piece)).encode("utf-8"))
    return {"rows": len(rows), "dim": dim, "ids_sha256": digest.hexdigest()}


def save_training_state(
    out: Path,
    step: int,
    config: TrainConfig,
    fp: dict,
    model: torch.nn.Module,
    optimizer,
    best: dict | None = None,
    ema: dict[str, Tensor] | None = None,
) -> Path:
    blob = {
        "format": _FORMAT,
        "version": _VERSION,
        "step": step,
        "config": json.dumps(config.to_dict()),
        "fingerprint": json.dumps(fp),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
    }
    if best is not None:
        blob["best"] = json.dumps(best)
    if ema is not None:
        blob["ema"] = ema
    blob["sha256"] = content_sha256(blob)
    buf = io.BytesIO()
    torch.save(blob, buf)
    path = out / STATE_FILE
    with atomic_write(path) as fh:
        fh.write(buf.getbuffer())
    return path


def parse_training_state(data: bytes, source: str) -> TrainingState:
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise ValueError(f"{source}: not a readable training state ({exc})") from exc
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
        raise ValueError(f"{source}: not a LocDiff training state")
    if blob.get("version") != _VERSION:
        raise ValueError(
            f"{source}: training state version {blob.get('version')!r}; this program reads "
            f"version {_VERSION}"
        )
    recorded = blob.pop("sha256", None)
    if recorded is not None and content_sha256(blob) != recorded:
        raise ValueError(damaged_message(source))
    _check_finite(blob, source)
    try:
        config = TrainConfig.from_dict(json.loads(blob["config"]))
        return TrainingState(
            int(blob["step"]),
            config,
            json.loads(blob["fingerprint"]),
            blob["model"],
            blob["optimizer"],
            checked=recorded is not None,
            best=json.loads(blob["best"]) if "best" in blob else None,
            ema=blob.get("ema"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{source}: damaged training state ({exc})") from exc


def _check_finite(blob: dict, source: str) -> None:
    """Refuse NaN or infinite weights or optimiser moments: training never saves them (it
    stops on divergence first), so they come from a damaged file."""

    def entries(value: object) -> list:
        return list(value.items()) if isinstance(value, dict) else []

    named = [(f"model tensor {k!r}", v) for k, v in entries(blob.get("model"))]
    named += [(f"weight-average tensor {k!r}", v) for k, v in entries(blob.get("ema"))]
    optimizer = blob.get("optimizer")
    for index, moments in entries(optimizer.get("state") if isinstance(optimizer, dict) else None):
        named += [(f"optimizer state {k!r} of parameter {index}", v) for k, v in entries(moments)]
    for name, value in named:
        problem = nonfinite_problem(name, value) if isinstance(value, Tensor) else None
        if problem:
            raise ValueError(f"{source} {problem}")


def read_saved_config(run_dir: Path) -> TrainConfig:
    """The settings a run was started with (for ``--resume`` without the full command)."""
    path = run_dir / STATE_FILE
    if not path.exists():
        raise ValueError(
            f"{run_dir}: no {STATE_FILE} there, so there is no run to resume; "
            "start one with `locdiff train --data D --out RUN_DIR`"
        )
    return parse_training_state(path.read_bytes(), str(path)).config


def truncate_metrics(out: Path, step: int) -> int:
    """Drop the metrics lines past ``step`` (written after the last save of an interrupted
    run), so a resumed run's plot does not double back; returns how many were dropped."""
    path = out / METRICS_FILE
    if not path.exists():
        return 0
    keep, dropped = [], 0
    # Split at "\n" only: str.splitlines() would also end a line at U+2028 inside a string.
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line:
            continue
        try:
            past = json.loads(line).get("step", 0) > step
        except (json.JSONDecodeError, AttributeError, TypeError):
            past = True  # a line cut short by the interruption
        if past:
            dropped += 1
        else:
            keep.append(line + "\n")
    if dropped:
        with atomic_write(path, text=True) as fh:
            fh.writelines(keep)
    return dropped


@dataclass
class RunPlan:
    """What the training loop starts from."""

    train_rows: np.ndarray  # rows of the data set to train on (int64)
    state: TrainingState | None  # when resuming
    fingerprint: dict = field(default_factory=dict)  # rank 0
    val: EmbeddingSet | None = None  # rank 0: the validation data ...
    val_rows: np.ndarray | None = None  # ... and its rows (None: all)
    notes: list[str] = field(default_factory=list)  # for the log (rank 0)


def open_run(
    config: TrainConfig, env: distributed.DistEnv, data: EmbeddingSet, resume: bool
) -> RunPlan:
    """Prepare the run folder on rank 0 and share the training rows and the resume state."""
    plan, blob, header = None, b"", {}
    if env.is_main:
        try:
            plan, blob = _open_main(config, data, resume)
        except (ValueError, OSError) as exc:
            if not env.ddp:
                raise
            header = {"error": str(exc), "os": isinstance(exc, OSError)}
    if not env.ddp:
        return plan
    header = json.loads(
        distributed.share(env, json.dumps(header).encode() if env.is_main else None)
    )
    if "error" in header:
        raise (OSError if header["os"] else ValueError)(header["error"])
    rows = distributed.share(env, plan.train_rows.tobytes() if env.is_main else None)
    blob = distributed.share(env, blob if env.is_main else None)
    if env.is_main:
        return plan
    state = parse_training_state(blob, f"rank 0's {STATE_FILE}") if blob else None
    return RunPlan(np.frombuffer(rows, dtype=np.int64).copy(), state)


def _open_main(config: TrainConfig, data: EmbeddingSet, resume: bool) -> tuple[RunPlan, bytes]:
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    blob, state, notes = b"", None, []
    if resume:
        path = out / STATE_FILE
        if not path.exists():
            raise ValueError(f"{out}: no {STATE_FILE} there, so there is no run to resume")
        blob = path.read_bytes()
        state = parse_training_state(blob, str(path))
        if not state.checked:
            notes.append(
                f"{path} records no sha256 (saved by an older locdiff), so it was read "
                "unchecked; the next save records one"
            )
    else:
        for name in (STATE_FILE, CHECKPOINT_FILE):
            if (out / name).exists():
                raise ValueError(
                    f"{out} already holds a run ({name}); continue it with `locdiff train "
                    "--resume RUN_DIR`, or choose another --out"
                )
    val, val_rows, train_rows = None, None, np.arange(len(data), dtype=np.int64)
    if config.val_fraction > 0:
        split = _split(config, data, resume)
        val, val_rows, train_rows = data, split.val, split.train
        notes.append(
            f"validation split: {len(split.val):,} photos held out, {len(split.train):,} to "
            f"train on, {len(split.dropped):,} training photos within {config.val_min_km} km "
            f"of a validation photo dropped ({out / SPLIT_FILE})"
        )
    elif config.val is not None:
        val = load_embeddings(config.val)
        if val.dim != data.dim:
            raise ValueError(
                f"{config.val}: embeddings have width {val.dim}, the training data {data.dim}"
            )
        check_encoder(data.encoder, val.encoder, str(config.val))
        train_rows, near = drop_near(
            data.lat, data.lon, train_rows, val.lat, val.lon, config.val_min_km
        )
        if config.val_min_km > 0:
            notes.append(
                f"{len(near):,} training photos within {config.val_min_km} km of a "
                f"photo of {config.val} dropped"
            )
    fp = fingerprint(data.ids, train_rows, data.dim)
    if state is not None:
        _check_resume(state, config, fp, out / STATE_FILE)
        dropped = truncate_metrics(out, state.step)
        notes.append(
            f"resuming from step {state.step}"
            + (f" ({dropped} metrics lines past it dropped)" if dropped else "")
        )
        ckpt_step = _checkpoint_step(out)
        if ckpt_step != state.step:
            notes.append(
                f"{CHECKPOINT_FILE} is from step {ckpt_step} (the run stopped between the two "
                f"writes); continuing from the state's step {state.step}, whose weights it holds"
            )
    plan = RunPlan(train_rows, state, fp, val, val_rows, notes)
    return plan, blob


def _checkpoint_step(out: Path) -> int | None:
    try:
        return read_config(out).training.get("step")
    except ValueError:
        return None


def _split(config: TrainConfig, data: EmbeddingSet, resume: bool) -> Split:
    path = config.out / SPLIT_FILE
    if resume:
        return read_split(path, data.ids, data.lat, data.lon, config.val_min_km)
    split = split_by_distance(
        data.lat, data.lon, config.val_fraction, config.val_min_km, seed=config.seed
    )
    settings = {
        "data": str(config.data),
        "val_fraction": config.val_fraction,
        "val_min_km": config.val_min_km,
        "seed": config.seed,
    }
    write_split(path, split, data.ids, settings)
    return split


def _check_resume(state: TrainingState, config: TrainConfig, fp: dict, source: Path) -> None:
    changed = resume_mismatches(state.config, config)
    if changed:
        raise ValueError(
            f"{source}: the run was started with other settings; a resume may not change "
            + "; ".join(changed)
            + ". Resume with the original settings (`locdiff train --resume RUN_DIR` alone "
            "reuses them), or start a new run with --out"
        )
    if fp != state.fingerprint:
        raise ValueError(
            f"{source}: the training photos differ from the run's ({state.fingerprint['rows']:,} "
            f"rows of width {state.fingerprint['dim']} then, {fp['rows']:,} of width {fp['dim']} "
            "now, or other ids); resume with the same --data and validation split"
        )
