"""The LocDiffusion training loop on embedding datasets (paper Sec. 4.6, Appendix A.7).

    locdiff train --data TRAIN --val VAL --out RUN_DIR --degree 47 --epochs 10 --batch-size 512

Paper defaults: Adam (lr 1e-4, betas (0.9, 0.99), weight decay 5e-4), dropout 0.3, 2048
anchors per batch for the SHDD-KL loss, T = 100 diffusion steps, clean-latent prediction.

The run folder receives ``checkpoint.safetensors`` (weights and config, written atomically at
every epoch end and at the end), ``metrics.jsonl`` (one JSON object per logging step: step,
epoch, loss, lr, samples per second; validation accuracies when validation runs) and
``train.log`` (the human-readable log). The loop keeps to what a ``torchrun`` launch needs
(one ``raw_model``, rank-0-only writes through :class:`RunWriter`), so the distributed trainer
wraps it rather than replacing it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from locdiff_core.checkpoint import CheckpointConfig, check_encoder, save_checkpoint
from locdiff_core.diffusion import DiffusionConfig, GaussianDiffusion
from locdiff_core.geo import great_circle_km
from locdiff_core.metrics import summarize
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.predictor import Predictor, PredictorConfig
from locdiff_core.shdd.harmonics import check_degree
from trainer.data import EmbeddingSet, load_embeddings


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    val: Path | None = None
    degree: int = 47
    epochs: int = 10
    batch_size: int = 512
    seed: int = 0
    device: str = "cpu"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 5e-4
    widths: tuple[int, ...] = (1024, 512, 256)
    dim_bottleneck: int = 128
    dropout: float = 0.3
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    log_every: int = 50  # steps between metrics lines
    max_steps: int | None = None  # stop early (for tests and quick looks)
    max_seconds: float | None = None  # stop after this much training time
    val_items: int = 512  # validation inputs (a fixed subset)
    val_samples: int = 16
    val_steps: int = 20  # DDIM steps for validation

    def validate(self) -> None:
        check_degree(self.degree)
        if self.epochs < 1 or self.batch_size < 1 or self.log_every < 1:
            raise ValueError("epochs, batch_size and log_every must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
        self.diffusion.validate()


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class RunWriter:
    """Everything a run writes besides the checkpoint; only the main process writes."""

    def __init__(self, out: Path, is_main: bool = True, echo: Callable[[str], None] | None = None):
        self.out, self.is_main = out, is_main
        self.echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        if is_main:
            out.mkdir(parents=True, exist_ok=True)

    def _append(self, name: str, line: str) -> None:
        with open(self.out / name, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def log(self, line: str) -> None:
        if self.is_main:
            self._append("train.log", f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}")
            self.echo(line)

    def metrics(self, record: dict) -> None:
        if self.is_main:
            self._append("metrics.jsonl", json.dumps(record))


def _progress_bar(done: int, total: int, width: int = 30) -> str:
    frac = min(done / max(total, 1), 1.0)
    return "[" + "#" * round(frac * width) + "." * (width - round(frac * width)) + "]"


def validate_model(
    model: CSUNet, config: CheckpointConfig, data: EmbeddingSet, train: TrainConfig
) -> dict:
    """Accuracies of the best guess and the centre on a fixed subset of ``data``."""
    n = min(len(data), train.val_items)
    rows = np.random.default_rng(0).permutation(len(data))[:n]
    was_training = model.training
    predictor = Predictor(model, config)
    cfg = PredictorConfig(num_samples=train.val_samples, num_steps=train.val_steps, seed=train.seed)
    preds = predictor.predict(data.embedding[rows], cfg)
    model.train(was_training)
    lat, lon = torch.tensor(data.lat[rows]), torch.tensor(data.lon[rows])
    out = {}
    for name, pick in (("best", lambda p: p.best), ("centre", lambda p: p.centre)):
        guess = torch.tensor([pick(p) for p in preds], dtype=torch.float64)
        out[name] = summarize(great_circle_km(guess[:, 0], guess[:, 1], lat, lon))
    return out


def train(config: TrainConfig, writer: RunWriter | None = None) -> Path:
    """Train a model; returns the checkpoint path. Raises ``ValueError`` on bad input and
    :class:`TrainingDivergedError` on a non-finite loss (the last good checkpoint is kept)."""
    config.validate()
    writer = writer or RunWriter(config.out)
    torch.manual_seed(config.seed)
    data = load_embeddings(config.data)
    val = load_embeddings(config.val) if config.val is not None else None
    if val is not None:
        if val.dim != data.dim:
            raise ValueError(
                f"{config.val}: embeddings have width {val.dim}, the training data {data.dim}"
            )
        check_encoder(data.encoder, val.encoder, str(config.val))
    device = torch.device(config.device)
    model_cfg = CSUNetConfig(
        degree=config.degree,
        dim_cond=data.dim,
        widths=tuple(config.widths),
        dim_bottleneck=config.dim_bottleneck,
        dropout=config.dropout,
    )
    model = CSUNet(model_cfg).to(device)
    diffusion = GaussianDiffusion(config.diffusion)
    facts = {
        "data": str(config.data),
        "num_train": len(data),
        "seed": config.seed,
        "lr": config.lr,
        "batch_size": config.batch_size,
    }
    ckpt_cfg = CheckpointConfig(model_cfg, config.diffusion, data.encoder, facts)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    emb = torch.from_numpy(data.embedding.astype(np.float32))
    lat, lon = torch.from_numpy(data.lat), torch.from_numpy(data.lon)
    gen = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    params = sum(p.numel() for p in model.parameters())
    writer.log(f"config: {config}")
    writer.log(
        f"training {params:,} parameters on {len(data):,} embeddings (dim {data.dim}), "
        f"L={config.degree}, {config.epochs} epochs x {steps_per_epoch} steps, device {device}"
    )
    step, start = 0, time.perf_counter()
    window_loss, window_n, window_t = 0.0, 0, time.perf_counter()
    path = None
    stop = False
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(data), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            c = emb[idx].to(device, non_blocking=True)
            losses = diffusion.training_losses(
                model, lat[idx].to(device), lon[idx].to(device), c, config.degree
            )
            loss = losses.mean()
            if not torch.isfinite(loss):
                writer.log(f"step {step}: loss is {float(loss)}; stopping (last checkpoint kept)")
                raise TrainingDivergedError(
                    f"non-finite training loss at step {step} (epoch {epoch}); try a lower --lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            window_loss += float(loss.detach()) * len(idx)
            window_n += len(idx)
            if step % config.log_every == 0 or step == total:
                now = time.perf_counter()
                record = {
                    "step": step,
                    "epoch": epoch,
                    "loss": window_loss / window_n,
                    "lr": optimizer.param_groups[0]["lr"],
                    "samples_per_s": window_n / max(now - window_t, 1e-9),
                }
                writer.metrics(record)
                writer.log(
                    f"{_progress_bar(step, total)} step {step}/{total} epoch {epoch} "
                    f"loss {record['loss']:.4f} {record['samples_per_s']:.0f} samples/s"
                )
                window_loss, window_n, window_t = 0.0, 0, now
            elapsed = time.perf_counter() - start
            if step >= total or (config.max_seconds is not None and elapsed > config.max_seconds):
                stop = True
                break
        ckpt_cfg = CheckpointConfig(
            model_cfg, config.diffusion, data.encoder, {**facts, "step": step, "epoch": epoch}
        )
        if writer.is_main:
            path = save_checkpoint(config.out, model, ckpt_cfg)
        if val is not None:
            result = validate_model(model, ckpt_cfg, val, config)
            writer.metrics({"step": step, "epoch": epoch, "val": result})
            b = result["best"]
            writer.log(
                f"validation after epoch {epoch}: best guess {b['acc_750km']:.1f}% within 750 km, "
                f"{b['acc_200km']:.1f}% within 200 km, median {b['median_km']:.0f} km"
            )
        if stop:
            break
    writer.log(f"done: {step} steps in {time.perf_counter() - start:.1f} s; checkpoint {path}")
    return path
