"""The training configuration: what a run trains and how, and what a resumed run may change.

``TrainConfig`` is stored (as JSON) in every run's ``training_state.pt``, so ``locdiff train
--resume RUN_DIR`` rebuilds it without the original command line; :func:`resume_mismatches`
names the settings a resume must not change because they change what is computed.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from locdiff_core.diffusion import DiffusionConfig, LossKind, Prediction
from locdiff_core.shdd import KLEstimator
from locdiff_core.shdd.harmonics import check_degree


class LRSchedule(enum.Enum):
    CONSTANT = "constant"  # the paper's: Adam at a fixed lr (after an optional warm-up)
    COSINE = "cosine"  # warm-up, then cosine decay to lr / 10 at the last epoch's end


class Precision(enum.Enum):
    BF16 = "bf16"  # the network runs under bfloat16 autocast on CUDA (the loss stays float32)
    FP32 = "fp32"


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    val: Path | None = None
    val_fraction: float = 0.0  # > 0: hold out this share of the data for validation
    val_min_km: float = 0.0  # no validation photo this close to a training photo
    degree: int = 47
    epochs: int = 10
    batch_size: int = 512  # the GLOBAL batch: split across processes and accumulation steps
    accum_steps: int = 1  # micro-steps per optimiser step (gradient accumulation)
    seed: int = 0
    device: str = "cpu"  # "cuda": each torchrun process uses cuda:LOCAL_RANK
    precision: Precision = Precision.BF16  # on CUDA only; CPU always trains in float32
    lr: float = 3e-4
    lr_schedule: LRSchedule = LRSchedule.COSINE
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 5e-4
    widths: tuple[int, ...] = (1024, 512, 256)
    dim_bottleneck: int = 128
    dropout: float = 0.3
    cond_rms_norm: bool = True  # the network rescales each condition to RMS 1 (nn.cs_unet)
    ema_decay: float = 0.999  # > 0: sample and validate with an EMA of the weights (trainer.ema)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    log_every: int = 50  # steps between metrics lines
    checkpoint_every: int = 1000  # steps between checkpoints (and one at the end)
    val_every: int = 1  # epochs between validations (and one at the end)
    early_stop: int = 0  # validations without a better median before the run stops (0: never)
    max_steps: int | None = None  # stop at this global step (tests, quick looks)
    max_seconds: float | None = None  # stop after this much training time
    val_items: int = 512  # validation inputs (a fixed subset)
    val_samples: int = 16
    val_steps: int = 20  # DDIM steps for validation
    dump_rank_params: bool = False  # debug: every process writes its final parameters

    def validate(self) -> None:
        check_degree(self.degree)
        for name in ("epochs", "batch_size", "accum_steps", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.early_stop < 0:
            raise ValueError(f"early_stop must be >= 0 (validations), got {self.early_stop}")
        if self.val_every < 1:
            raise ValueError(f"val_every must be >= 1 (epochs), got {self.val_every}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0: no average), got {self.ema_decay}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.val_min_km < 0:
            raise ValueError(f"val_min_km must be >= 0, got {self.val_min_km}")
        if self.val is not None and self.val_fraction > 0:
            raise ValueError(
                "give either --val VAL (a separate validation set) or --val-fraction F "
                "(hold out part of --data), not both"
            )
        if self.val_min_km > 0 and self.val is None and self.val_fraction == 0:
            raise ValueError("--val-min-km needs --val-fraction F or --val VAL")
        self.diffusion.validate()

    def micro_batch(self, world_size: int) -> int:
        """Rows per process and micro-step: ``batch_size / (world_size * accum_steps)``."""
        parts = world_size * self.accum_steps
        if self.batch_size % parts:
            raise ValueError(
                f"--batch-size {self.batch_size} (the global batch) must split evenly over "
                f"{world_size} process(es) x {self.accum_steps} accumulation step(s) = {parts}; "
                f"use a multiple of {parts}, e.g. {max(parts, self.batch_size // parts * parts)}"
            )
        return self.batch_size // parts

    def to_dict(self) -> dict:
        """JSON-ready: paths as strings, enums as their values, the diffusion config nested."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, enum.Enum):
                v = v.value
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, DiffusionConfig):
                v = v.to_dict()
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        kw = dict(d)
        for name in ("data", "out"):
            kw[name] = Path(kw[name])
        kw["val"] = None if kw.get("val") is None else Path(kw["val"])
        kw["precision"] = Precision(kw["precision"])
        kw["lr_schedule"] = LRSchedule(kw["lr_schedule"])
        kw["betas"] = tuple(kw["betas"])
        kw["widths"] = tuple(kw["widths"])
        kw["diffusion"] = DiffusionConfig.from_dict(kw["diffusion"])
        for name, value in _ADDED.items():  # what runs saved before these settings existed did
            kw.setdefault(name, value)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(kw.keys() - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; upgrade locdiff")
        return cls(**kw)


#: Named recipes: the settings each sets over TrainConfig's defaults (``diffusion`` for the
#: diffusion's). ``default``: TrainConfig's own, the best measured on held-out photos of the
#: development task (benchmarks/recipes.py; docs/performance.md): the paper's network and loss
#: (importance-sampled KL anchors) with the condition rescaled to RMS 1, a weight average
#: (0.999) and a cosine schedule at 3e-4 warmed up over 100 steps. ``paper``: the paper's
#: Appendix A.7 (Adam 1e-4 constant, weight decay 5e-4, dropout 0.3, the CS-UNet of Fig. 2b,
#: T = 100, clean-latent prediction, 2048 uniform KL anchors, no weight average, no condition
#: noise).
RECIPES: dict[str, dict] = {
    "paper": {
        "lr": 1e-4,
        "lr_schedule": LRSchedule.CONSTANT,
        "warmup_steps": 0,
        "betas": (0.9, 0.99),
        "weight_decay": 5e-4,
        "widths": (1024, 512, 256),
        "dim_bottleneck": 128,
        "dropout": 0.3,
        "cond_rms_norm": False,
        "ema_decay": 0.0,
        "diffusion": {
            "num_steps": 100,
            "prediction": Prediction.X0,
            "loss": LossKind.SHDD_KL,
            "kl_estimator": KLEstimator.UNIFORM,
            "num_anchors": 2048,
            "cond_drop_prob": 0.0,
            "cond_noise": 0.0,
        },
    },
    "default": {},
}


def with_recipe(config: TrainConfig, name: str) -> TrainConfig:
    """``config`` with the settings of the recipe ``name`` (``ValueError`` lists the names)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; the recipes are {', '.join(RECIPES)}")
    settings = dict(RECIPES[name])
    diffusion = settings.pop("diffusion", {})
    return dataclasses.replace(
        config, **settings, diffusion=dataclasses.replace(config.diffusion, **diffusion)
    )


#: Settings added after runs were first saved, with the value those runs trained with.
_ADDED = {"ema_decay": 0.0, "cond_rms_norm": False}


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based): a linear warm-up over
    ``warmup_steps``, then constant or a cosine decay to ``lr / 10`` at ``total_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.lr_schedule is LRSchedule.CONSTANT:
        return config.lr
    span = max(1, total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr / 10
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - floor)


#: Settings a resumed run may change: they decide where, how fast, how often and until when it
#: runs, not what it computes (the data set is checked by content, not by path).
RESUMABLE = frozenset(
    {
        "data",
        "out",
        "val",
        "device",
        "precision",
        "accum_steps",
        "log_every",
        "checkpoint_every",
        "val_every",
        "max_steps",
        "max_seconds",
        "early_stop",
        "val_items",
        "val_samples",
        "val_steps",
        "dump_rank_params",
    }
)


def resume_mismatches(saved: TrainConfig, new: TrainConfig) -> list[str]:
    """``"name: saved -> new"`` for each setting that differs and may not change on resume."""
    old, cur = saved.to_dict(), new.to_dict()
    allowed = set(RESUMABLE)
    if saved.lr_schedule is LRSchedule.CONSTANT:
        allowed.add("epochs")  # only the cosine schedule's length depends on it
    return [f"{k}: {old[k]!r} -> {cur[k]!r}" for k in old if k not in allowed and old[k] != cur[k]]
