"""The LocDiffusion training loop (paper Sec. 4.6, Appendix A.7): one process, or one per GPU
under ``torchrun`` with DistributedDataParallel (see :mod:`trainer.distributed`).

    locdiff train --data TRAIN --val VAL --out RUN_DIR --degree 47 --epochs 10 --batch-size 512
    torchrun --standalone --nproc-per-node 4 -m trainer train --data TRAIN --out RUN_DIR \\
        --val-fraction 0.05 --val-min-km 1 --degree 47 --batch-size 512 --device cuda
    locdiff train --resume RUN_DIR      # (or the torchrun line with --resume RUN_DIR)
    touch RUN_DIR/STOP                  # every process finishes its step, saves, exits 0

Paper defaults: Adam (lr 1e-4 constant, betas (0.9, 0.99), weight decay 5e-4), dropout 0.3,
2048 anchors per batch for the SHDD-KL loss, T = 100 diffusion steps, clean-latent prediction.

``--batch-size`` is the global batch ``B``: ``W`` processes x ``A`` accumulation steps x a
micro-batch. Step ``s`` of epoch ``e`` trains on rows ``perm_e[sB:(s+1)B]`` of the epoch's
shuffle (DistributedSampler with ``set_epoch``; process ``r`` holds the positions ``r, r+W,
...`` of that block). Every random number of the step (each example's timestep, noise,
condition dropout and local KL anchors, and the batch's shared uniform anchors) is drawn for
the whole global batch from a generator seeded by (seed, step) and taken by the example's
position; each process's loss is its rows' sum times ``W / B`` and DDP averages the gradients,
so an update equals the single-process update on the same global batch (to rounding), for any
``W`` and ``A``. Each epoch trains on ``floor(N / B)`` full global batches (drop-last; the
``N mod B`` rows left over differ from epoch to epoch). Dropout masks depend on (seed, step,
rank). Only the network runs under bfloat16 autocast on CUDA; the loss stays in float32.

The run folder receives ``checkpoint.safetensors`` (weights and config, every
``--checkpoint-every`` steps and at the end), ``training_state.pt`` (what ``--resume`` needs,
:mod:`trainer.run_state`), ``metrics.jsonl`` (one small JSON object per line: ``step``,
``epoch``, ``loss``, ``lr``, ``samples_per_s``, ``time``; validation lines carry ``step``,
``epoch``, ``time`` and ``val``: {"best": {...}, "centre": {...}}), ``train.log`` and, with
``--val-fraction``, ``split.json``. Only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as save_safetensors
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from locdiff_core.atomic_file import atomic_write
from locdiff_core.checkpoint import CheckpointConfig, checkpoint_path, save_checkpoint
from locdiff_core.diffusion import GaussianDiffusion
from locdiff_core.geo import great_circle_km
from locdiff_core.metrics import summarize
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.predictor import Predictor, PredictorConfig
from trainer import distributed, run_state
from trainer.config import LRSchedule, Precision, TrainConfig, learning_rate
from trainer.data import EmbeddingSet, load_embeddings

__all__ = ["LRSchedule", "Precision", "RunWriter", "TrainConfig", "train", "validate_model"]


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

    def log(self, line: str, echo: bool = True) -> None:
        if self.is_main:
            self._append("train.log", f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}")
            if echo:
                self.echo(line)

    def metrics(self, record: dict) -> None:
        if self.is_main:
            self._append("metrics.jsonl", json.dumps(record))


def _progress_bar(done: int, total: int, width: int = 30) -> str:
    frac = min(done / max(total, 1), 1.0)
    return "[" + "#" * round(frac * width) + "." * (width - round(frac * width)) + "]"


def validate_model(
    model: CSUNet,
    config: CheckpointConfig,
    data: EmbeddingSet,
    train: TrainConfig,
    rows: np.ndarray | None = None,
) -> dict:
    """Accuracies of the best guess and the centre on a fixed subset of ``data`` (of its
    ``rows`` when given)."""
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    n = min(len(rows), train.val_items)
    rows = rows[np.random.default_rng(0).permutation(len(rows))[:n]]
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


def _seed_for(*parts: int) -> int:
    """A 63-bit seed mixing ``parts`` (the run's seed, the step, ...)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> np.uint64(1))


def train(config: TrainConfig, writer: RunWriter | None = None, *, resume: bool = False) -> Path:
    """Train (or, with ``resume``, continue) a run; returns the checkpoint path. Raises
    ``ValueError`` on bad input and :class:`TrainingDivergedError` on a non-finite loss (the
    last good checkpoint is kept). Joins torchrun's process group when launched by it."""
    config.validate()
    env = distributed.setup(config.device)
    try:
        writer = writer or RunWriter(config.out, is_main=env.is_main)
        return _train(config, env, writer, resume)
    finally:
        distributed.teardown(env)


def _build_model(config: TrainConfig, dim_cond: int, device: torch.device) -> CSUNet:
    torch.manual_seed(config.seed)
    model_cfg = CSUNetConfig(
        degree=config.degree,
        dim_cond=dim_cond,
        widths=tuple(config.widths),
        dim_bottleneck=config.dim_bottleneck,
        dropout=config.dropout,
    )
    model = CSUNet(model_cfg).to(device)
    if config.diffusion.cond_drop_prob == 0:
        # Unused without condition dropout; DDP wants every trained parameter used.
        model.null_cond.requires_grad_(False)
    return model


def _train(config: TrainConfig, env: distributed.DistEnv, writer: RunWriter, resume: bool) -> Path:
    W, B, A = env.world_size, config.batch_size, config.accum_steps
    micro = config.micro_batch(W)
    device = env.device
    data = load_embeddings(config.data)
    plan = run_state.open_run(config, env, data, resume)
    for note in plan.notes:
        writer.log(note)
    n_train = len(plan.train_rows)
    steps_per_epoch = n_train // B
    if steps_per_epoch == 0:
        raise ValueError(
            f"{config.data}: {n_train} training photos, fewer than one global batch "
            f"(--batch-size {B}); lower --batch-size"
        )
    model = _build_model(config, data.dim, device)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
    )
    step = 0
    if plan.state is not None:
        model.load_state_dict(plan.state.model)
        optimizer.load_state_dict(plan.state.optimizer)
        step = plan.state.step
    ddp_model = model
    if env.ddp:
        ddp_model = DistributedDataParallel(
            model, device_ids=[env.local_rank] if device.type == "cuda" else None
        )
    raw_model = ddp_model.module if env.ddp else ddp_model
    diffusion = GaussianDiffusion(config.diffusion)
    bf16 = device.type == "cuda" and config.precision is Precision.BF16

    nonfinite = torch.zeros((), dtype=torch.float64, device=device)  # outputs, this step

    def network(x, t, c, drop_cond=None):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = ddp_model(x, t, c, drop_cond=drop_cond).float()
        # A diverged network is counted, not raised here: the processes decide together at
        # the end of the step (the loss would refuse non-finite input).
        finite = torch.isfinite(out)
        nonfinite.add_((~finite).sum())
        return torch.where(finite, out, torch.zeros_like(out))

    emb, lat, lon = (torch.from_numpy(a) for a in (data.embedding, data.lat, data.lon))
    rows = torch.from_numpy(plan.train_rows)
    sampler = DistributedSampler(
        range(n_train), num_replicas=W, rank=env.rank, shuffle=True, seed=config.seed
    )
    b = B // W  # rows of this process per step; global position of local row j: j*W + rank
    position = torch.arange(b, device=device) * W + env.rank
    gen = torch.Generator(device=device)
    total = steps_per_epoch * config.epochs
    end = total if config.max_steps is None else min(total, config.max_steps)
    has_val = config.val is not None or config.val_fraction > 0
    facts = {"data": str(config.data), "num_train": n_train, "seed": config.seed}
    facts |= {"lr": config.lr, "batch_size": B, "world_size": W}

    def ckpt_config(at: int) -> CheckpointConfig:
        extra = {"step": at, "epoch": (at - 1) // steps_per_epoch if at else 0}
        return CheckpointConfig(raw_model.config, config.diffusion, data.encoder, facts | extra)

    saved = [plan.state.step if plan.state is not None else None]

    def save(at: int) -> None:
        if not all(bool(torch.isfinite(p).all()) for p in raw_model.parameters()):
            raise _diverged(writer, config, f"non-finite parameters after step {at}", saved[0])
        saved[0] = at
        distributed.barrier(env)
        if env.is_main:
            save_checkpoint(config.out, raw_model, ckpt_config(at))
            run_state.save_training_state(
                config.out, at, config, plan.fingerprint, raw_model, optimizer
            )
        distributed.barrier(env)

    def validate(at: int) -> None:
        if env.is_main:
            epoch = (at - 1) // steps_per_epoch
            result = validate_model(raw_model, ckpt_config(at), plan.val, config, plan.val_rows)
            writer.metrics({"step": at, "epoch": epoch, "time": time.time(), "val": result})
            b_ = result["best"]
            writer.log(
                f"validation at step {at} (epoch {epoch}): best guess {b_['acc_750km']:.1f}% "
                f"within 750 km, {b_['acc_200km']:.1f}% within 200 km, median "
                f"{b_['median_km']:.0f} km"
            )
        distributed.barrier(env)

    params = sum(p.numel() for p in model.parameters())
    writer.log(f"config: {config}")
    writer.log(
        f"training {params:,} parameters on {n_train:,} embeddings (dim {data.dim}), "
        f"L={config.degree}, {config.epochs} epochs x {steps_per_epoch} steps; {W} process(es) "
        f"({env.backend if env.ddp else 'single'}) on {device}, global batch {B} = {W} x {A} "
        f"x {micro}" + (", bf16 autocast" if bf16 else "")
    )
    if step >= end:
        writer.log(f"already at step {step} of {end}; nothing to train")
        return checkpoint_path(config.out)
    start = time.perf_counter()
    window_loss, window_n, window_t, paused = 0.0, 0, time.perf_counter(), 0.0
    epoch_order, order_epoch = None, -1
    stop_file = config.out / run_state.STOP_FILE if env.is_main else None
    with distributed.StopRequest(stop_file) as stop:
        while step < end:
            epoch, i = divmod(step, steps_per_epoch)
            if order_epoch != epoch:
                sampler.set_epoch(epoch)
                epoch_order, order_epoch = torch.tensor(list(sampler), dtype=torch.int64), epoch
            step_rows = rows[epoch_order[i * b : (i + 1) * b]]
            seed = _seed_for(config.seed, step, env.rank, 1)  # dropout masks
            torch.random.default_generator.manual_seed(seed)
            if device.type == "cuda":
                torch.cuda.manual_seed(seed)
            draws = diffusion.draw(
                B,
                config.degree,
                generator=gen.manual_seed(_seed_for(config.seed, step)),
                device=device,
            )
            model.train()
            nonfinite.zero_()
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            for k in range(A):
                part = slice(k * micro, (k + 1) * micro)
                idx = step_rows[part]
                sync = not env.ddp or k == A - 1  # all-reduce gradients on the last micro-step
                with contextlib.nullcontext() if sync else ddp_model.no_sync():
                    losses = diffusion.training_losses(
                        network,
                        lat[idx],
                        lon[idx],
                        emb[idx].to(device, non_blocking=True),
                        config.degree,
                        draws=draws.rows(position[part]),
                    )
                    (losses.sum() * (W / B)).backward()
                loss_sum += losses.detach().sum()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm(grads).to(torch.float64)
            late = config.max_seconds is not None and (
                time.perf_counter() - start > config.max_seconds
            )
            flags = torch.tensor([stop.poll(), late], dtype=torch.float64, device=device)
            stats = torch.cat((torch.stack((loss_sum, grad_norm, nonfinite)), flags))
            loss_total, norm_total, bad, asked, late = distributed.all_reduce_sum(env, stats)
            what = _nonfinite(bad, loss_total / B, norm_total)
            if what:
                raise _diverged(writer, config, f"non-finite {what} in step {step + 1}", saved[0])
            lr = learning_rate(config, step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_loss, window_n = window_loss + loss_total, window_n + B
            if step % config.log_every == 0 or step == end:
                now = time.perf_counter()
                record = {
                    "step": step,
                    "epoch": epoch,
                    "loss": window_loss / window_n,
                    "lr": lr,
                    "samples_per_s": window_n / max(now - window_t - paused, 1e-9),
                    "time": time.time(),
                }
                writer.metrics(record)
                writer.log(
                    f"{_progress_bar(step, end)} step {step}/{end} epoch {epoch} "
                    f"loss {record['loss']:.4f} {record['samples_per_s']:.0f} samples/s"
                )
                window_loss, window_n, window_t, paused = 0.0, 0, now, 0.0
            stopping = asked > 0 or late > 0
            pause_start = time.perf_counter()
            if step % config.checkpoint_every == 0 or step == end or stopping:
                save(step)
            epoch_done = step % steps_per_epoch == 0 and (epoch + 1) % config.val_every == 0
            if has_val and (epoch_done or step == end or stopping):
                validate(step)
            paused += time.perf_counter() - pause_start
            if asked > 0:
                _log_stop(writer, config, stop.reason, step, env)
                break
            if late > 0:
                writer.log(f"--max-seconds {config.max_seconds:g} reached after step {step}")
                break
    writer.log(f"done: step {step} in {time.perf_counter() - start:.1f} s")
    if config.dump_rank_params:
        _dump_params(config.out, raw_model, env.rank)
    return checkpoint_path(config.out)


def _nonfinite(bad_outputs: float, loss: float, grad_norm: float) -> str | None:
    if bad_outputs:
        return f"network output ({bad_outputs:.0f} values)"
    if not math.isfinite(loss):
        return f"loss ({loss})"
    if not math.isfinite(grad_norm):
        return "gradient"
    return None


def _diverged(
    writer: RunWriter, config: TrainConfig, what: str, saved: int | None
) -> TrainingDivergedError:
    kept = "no checkpoint was written yet"
    if saved is not None:
        kept = f"the last good checkpoint, from step {saved}, is kept in {config.out}"
    message = (
        f"{what}; training stopped ({kept}). Try a lower --lr (now {config.lr:g}) or a "
        "warm-up (--warmup-steps 1000), and check the data for extreme embeddings"
    )
    writer.log(message, echo=False)  # the caller reports the error
    return TrainingDivergedError(message)


def _log_stop(writer: RunWriter, config: TrainConfig, reason, step: int, env) -> None:
    writer.log(
        f"stopped after step {step} on request ({reason or 'asked on another process'}); "
        f"checkpoint saved; continue with `locdiff train --resume {config.out}`"
    )
    stop_file = config.out / run_state.STOP_FILE
    if env.is_main and stop_file.exists():
        stop_file.unlink()
        writer.log(f"removed {stop_file} (it has been honoured)")


def _dump_params(out: Path, model: CSUNet, rank: int) -> None:
    """Debug aid (``--dump-rank-params``): this process's final parameters."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(out / f"params.rank{rank}.safetensors") as fh:
        fh.write(save_safetensors(tensors))
