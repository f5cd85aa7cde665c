"""The LocDiffusion training loop (paper Sec. 4.6, Appendix A.7): one process, or one per GPU
under ``torchrun`` with DistributedDataParallel (see :mod:`trainer.distributed`).

    locdiff train --data TRAIN --val VAL --out RUN_DIR --degree 47 --epochs 10 --batch-size 512
    torchrun --standalone --nproc-per-node 4 -m trainer train --data TRAIN --out RUN_DIR \\
        --val-fraction 0.05 --val-min-km 1 --degree 47 --batch-size 512 --device cuda
    locdiff train --resume RUN_DIR      # (or the torchrun line with --resume RUN_DIR)
    touch RUN_DIR/STOP                  # every process finishes its step, saves, exits 0

Defaults (``trainer.config``): the paper's network, loss and Adam, with what held-out photos
favoured: the condition rescaled to RMS 1, lr 3e-4 warmed up over 100 steps then a cosine
decay, an average of the weights (0.999). ``--recipe paper`` is Appendix A.7 exactly.

``--batch-size`` is the global batch ``B``: ``W`` processes x ``A`` accumulation steps x a
micro-batch. Step ``s`` of epoch ``e`` trains on rows ``perm_e[sB:(s+1)B]`` of the epoch's
shuffle (``randperm`` seeded with seed + e, the order DistributedSampler draws; process ``r``
holds the positions ``r, r+W, ...`` of that block and reads only those rows' embeddings from
the memory-mapped data set, :mod:`trainer.mapped_data`). Every random number of the step
(each example's timestep, noise, condition dropout and local KL anchors, and the batch's
shared uniform anchors) is drawn for
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
``--val-fraction``, ``split.json``. With validation, ``best.safetensors`` holds the weights of
the validation with the lowest median error of the best guess so far (predictors load it from
a run folder by default), and ``--early-stop N`` ends the run, saved, after N validations in a
row without a lower median; the best and that count are part of the resumable state. Only
rank 0 writes.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as save_safetensors
from torch.nn.parallel import DistributedDataParallel

from locdiff_core.atomic_file import atomic_write
from locdiff_core.checkpoint import CheckpointConfig, checkpoint_path, save_checkpoint
from locdiff_core.diffusion import GaussianDiffusion
from locdiff_core.geo import great_circle_km
from locdiff_core.metrics import summarize
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.predictor import Predictor, PredictorConfig
from locdiff_core.run_layout import BEST_FILE, STOP_FILE
from trainer import distributed, run_state
from trainer.config import LRSchedule, Precision, TrainConfig, learning_rate
from trainer.data import EmbeddingSet
from trainer.ema import WeightAverage
from trainer.mapped_data import open_embeddings
from trainer.run_writer import RunWriter, progress_bar

__all__ = [
    "LRSchedule",
    "Precision",
    "RunWriter",
    "TrainConfig",
    "TrainingDivergedError",
    "train",
    "validate_model",
]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def validation_subset(num_rows: int, val_items: int) -> np.ndarray:
    """The positions, among ``num_rows`` validation rows, that a validation scores: a fixed
    random ``val_items`` of them (the same for every validation of every run)."""
    return np.random.default_rng(0).permutation(num_rows)[: min(num_rows, val_items)]


def validate_model(
    model: CSUNet,
    config: CheckpointConfig,
    data: EmbeddingSet,
    train: TrainConfig,
    rows: np.ndarray | None = None,
) -> dict:
    """Accuracies of the best guess (the posterior's mode), the centre and the densest
    cluster of samples on a fixed subset of ``data`` (of its ``rows`` when given)."""
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    rows = rows[validation_subset(len(rows), train.val_items)]
    was_training = model.training
    predictor = Predictor(model, config)
    cfg = PredictorConfig(num_samples=train.val_samples, num_steps=train.val_steps, seed=train.seed)
    preds = predictor.predict(data.embedding[rows], cfg)
    model.train(was_training)
    lat, lon = torch.tensor(data.lat[rows]), torch.tensor(data.lon[rows])
    out = {}
    picks = {"best": lambda p: p.best, "centre": lambda p: p.centre}
    picks["cluster"] = lambda p: (p.candidates[0].lat, p.candidates[0].lon)
    for name, pick in picks.items():
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
        writer.is_main = writer.is_main and env.is_main  # only rank 0 writes
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
        cond_rms_norm=config.cond_rms_norm,
    )
    model = CSUNet(model_cfg).to(device)
    if config.diffusion.cond_drop_prob == 0:
        # Unused without condition dropout; DDP wants every trained parameter used.
        model.null_cond.requires_grad_(False)
    return model


class _Run:
    """One process's share of a training run: the data order, the model and its DDP wrapper,
    the optimiser and the step, with what happens at a step's end (checkpoints, validation)."""

    def __init__(
        self, config: TrainConfig, env: distributed.DistEnv, writer: RunWriter, resume: bool
    ) -> None:
        self.config, self.env, self.writer = config, env, writer
        self.micro = config.micro_batch(env.world_size)
        self.data = open_embeddings(config.data)  # mapped: rows are read per batch
        self.plan = run_state.open_run(config, env, self.data, resume)
        for note in self.plan.notes:
            writer.log(note)
        n_train, B = len(self.plan.train_rows), config.batch_size
        self.steps_per_epoch = n_train // B
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{config.data}: {n_train} training photos, fewer than one global batch "
                f"(--batch-size {B}); lower --batch-size"
            )
        device = env.device
        self.model = _build_model(config, self.data.dim, device)
        self.optimizer = torch.optim.Adam(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=config.lr,
            betas=config.betas,
            weight_decay=config.weight_decay,
        )
        self.step, self.saved = 0, None  # saved: the step of the last checkpoint written
        # Only rank 0 samples (validation, checkpoints), so only it keeps the average.
        keep_average = config.ema_decay > 0 and env.is_main
        self.ema = WeightAverage(self.model, config.ema_decay) if keep_average else None
        state = self.plan.state
        if state is not None:
            self.model.load_state_dict(state.model)
            self.optimizer.load_state_dict(state.optimizer)
            self.step = self.saved = state.step
            if self.ema is not None:
                if state.ema is None:
                    raise ValueError(f"{config.out}: the training state holds no weight average")
                self.ema.load_state_dict(state.ema)
        # The best validation so far (rank 0): {"step", "median_km", "stale"}, where stale
        # counts the validations since it; kept in the training state for a resume.
        self.best = self.plan.state.best if self.plan.state is not None else None
        self.ddp_model = self.model
        if env.ddp:
            ids = [env.local_rank] if device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=ids)
        self.raw_model = self.ddp_model.module if env.ddp else self.ddp_model
        self.diffusion = GaussianDiffusion(config.diffusion)
        self.bf16 = device.type == "cuda" and config.precision is Precision.BF16
        self.nonfinite = torch.zeros((), dtype=torch.float64, device=device)  # this step's
        self.lat, self.lon = torch.from_numpy(self.data.lat), torch.from_numpy(self.data.lon)
        self.rows = torch.from_numpy(self.plan.train_rows)
        W = env.world_size
        self.local = B // W  # this process's rows per step; local row j is global j*W + rank
        self.position = torch.arange(self.local, device=device) * W + env.rank
        self._taken = self.position.cpu()  # the same positions, for indexing the epoch order
        self.pin = device.type == "cuda"
        self.gen = torch.Generator(device=device)
        self.total = self.steps_per_epoch * config.epochs
        self.end = min(self.total, config.max_steps or self.total)
        self._order, self._order_epoch = torch.empty(0, dtype=torch.int64), -1
        facts = {"data": str(config.data), "num_train": n_train, "seed": config.seed}
        self.facts = facts | {"lr": config.lr, "batch_size": B, "world_size": W}

    def describe(self) -> str:
        c, env = self.config, self.env
        params = sum(p.numel() for p in self.model.parameters())
        return (
            f"training {params:,} parameters on {len(self.plan.train_rows):,} embeddings (dim "
            f"{self.data.dim}), L={c.degree}, {c.epochs} epochs x {self.steps_per_epoch} steps; "
            f"{env.world_size} process(es) ({env.backend if env.ddp else 'single'}) on "
            f"{env.device}, global batch {c.batch_size} = {env.world_size} x {c.accum_steps} x "
            f"{self.micro}" + (", bf16 autocast" if self.bf16 else "")
        )

    def _network(self, x, t, c, drop_cond=None):
        with torch.autocast(self.env.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.ddp_model(x, t, c, drop_cond=drop_cond).float()
        # A diverged network is counted, not raised: the processes decide together at the end
        # of the step (the loss would refuse non-finite input).
        finite = torch.isfinite(out)
        self.nonfinite.add_((~finite).sum())
        return torch.where(finite, out, torch.zeros_like(out))

    def _step_rows(self) -> torch.Tensor:
        """This process's rows of the current step's global batch (positions r, r+W, ...).

        The epoch's order is ``randperm(N)`` drawn from a generator seeded with seed + epoch
        (the order DistributedSampler draws), kept as one int64 array; step ``i`` takes
        positions ``iB + jW + r`` of it."""
        epoch, i = divmod(self.step, self.steps_per_epoch)
        if self._order_epoch != epoch:
            g = torch.Generator()
            g.manual_seed(self.config.seed + epoch)
            self._order = torch.randperm(len(self.rows), generator=g)
            self._order_epoch = epoch
        return self.rows[self._order[i * self.config.batch_size + self._taken]]

    def _embeddings(self, rows: torch.Tensor) -> torch.Tensor:
        """The embeddings of ``rows``, read from the data set's files onto the device."""
        batch = torch.from_numpy(self.data.embedding[rows.numpy()])
        if self.pin:
            batch = batch.pin_memory()
        return batch.to(self.env.device, non_blocking=True)

    def train_step(self, asked: bool, late: bool) -> tuple[float, float, bool, bool]:
        """One optimiser step over the global batch; returns the batch's mean loss, the
        learning rate used and whether any process asked to stop or ran out of time."""
        c, env, device = self.config, self.env, self.env.device
        B, A, micro = c.batch_size, c.accum_steps, self.micro
        rows = self._step_rows()
        emb = self._embeddings(rows)
        seed = _seed_for(c.seed, self.step, env.rank, 1)  # dropout masks
        torch.random.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        self.gen.manual_seed(_seed_for(c.seed, self.step))  # the global batch's randomness
        draws = self.diffusion.draw(
            B, c.degree, dim_cond=self.data.dim, generator=self.gen, device=device
        )
        self.model.train()
        self.nonfinite.zero_()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for k in range(A):
            part = slice(k * micro, (k + 1) * micro)
            idx = rows[part]
            sync = not env.ddp or k == A - 1  # all-reduce the gradients on the last micro-step
            with contextlib.nullcontext() if sync else self.ddp_model.no_sync():
                losses = self.diffusion.training_losses(
                    self._network,
                    self.lat[idx],
                    self.lon[idx],
                    emb[part],
                    c.degree,
                    draws=draws.rows(self.position[part]),
                )
                # DDP averages over the W processes: this makes the global-batch mean.
                (losses.sum() * (env.world_size / B)).backward()
            loss_sum += losses.detach().sum()
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads).to(torch.float64)
        flags = torch.tensor([asked, late], dtype=torch.float64, device=device)
        stats = torch.cat((torch.stack((loss_sum, grad_norm, self.nonfinite)), flags))
        loss_total, norm, bad, asked_n, late_n = distributed.all_reduce_sum(env, stats)
        what = _nonfinite(bad, loss_total / B, norm)
        if what:
            raise _diverged(
                self.writer, c, f"non-finite {what} in step {self.step + 1}", self.saved
            )
        lr = learning_rate(c, self.step, self.total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        self.step += 1
        return loss_total / B, lr, asked_n > 0, late_n > 0

    def checkpoint_config(self) -> CheckpointConfig:
        at = self.step
        extra = {"step": at, "epoch": (at - 1) // self.steps_per_epoch if at else 0}
        return CheckpointConfig(
            self.raw_model.config, self.config.diffusion, self.data.encoder, self.facts | extra
        )

    def sampled(self):
        """The network as it samples: holding the weight average while inside, if any."""
        if self.ema is None:
            return contextlib.nullcontext(self.raw_model)
        return self.ema.applied(self.raw_model)

    def save(self) -> None:
        """Checkpoint and training state (rank 0, between barriers); never non-finite weights."""
        if not all(bool(torch.isfinite(p).all()) for p in self.raw_model.parameters()):
            what = f"non-finite parameters after step {self.step}"
            raise _diverged(self.writer, self.config, what, self.saved)
        distributed.barrier(self.env)
        if self.env.is_main:
            out = self.config.out
            with self.sampled() as model:
                save_checkpoint(out, model, self.checkpoint_config())
            run_state.save_training_state(
                out,
                self.step,
                self.config,
                self.plan.fingerprint,
                self.raw_model,
                self.optimizer,
                self.best,
                ema=None if self.ema is None else self.ema.state_dict(),
            )
        self.saved = self.step
        distributed.barrier(self.env)

    def validate(self) -> bool:
        """The accuracy table on the validation photos (rank 0; the others wait). A lower
        median error of the best guess than any before writes ``best.safetensors``; returns
        whether ``early_stop`` validations in a row have not improved on it (on every
        process)."""
        stop = False
        if self.env.is_main:
            at, epoch = self.step, (self.step - 1) // self.steps_per_epoch
            plan, ckpt = self.plan, self.checkpoint_config()
            with self.sampled() as model:  # the weights the run samples with
                result = validate_model(model, ckpt, plan.val, self.config, plan.val_rows)
                self.writer.metrics(
                    {"step": at, "epoch": epoch, "time": time.time(), "val": result}
                )
                best = result["best"]
                self.writer.log(
                    f"validation at step {at} (epoch {epoch}): best guess "
                    f"{best['acc_750km']:.1f}% within 750 km, {best['acc_200km']:.1f}% within "
                    f"200 km, median {best['median_km']:.0f} km"
                )
                stop = self._keep_best(best["median_km"], ckpt)
        flag = torch.tensor([float(stop)], dtype=torch.float64, device=self.env.device)
        return distributed.all_reduce_sum(self.env, flag)[0] > 0

    def _keep_best(self, median_km: float, ckpt: CheckpointConfig) -> bool:
        at, patience = self.step, self.config.early_stop
        if self.best is None or median_km < self.best["median_km"]:
            save_checkpoint(self.config.out / BEST_FILE, self.raw_model, ckpt)
            self.best = {"step": at, "median_km": median_km, "stale": 0}
            self.writer.log(f"best validation so far (median {median_km:.0f} km): {BEST_FILE}")
            return False
        self.best = {**self.best, "stale": self.best["stale"] + 1}
        self.writer.log(
            f"no better than step {self.best['step']}'s median {self.best['median_km']:.0f} km "
            f"({self.best['stale']} validation(s) in a row)"
        )
        return bool(patience) and self.best["stale"] >= patience


def _train(config: TrainConfig, env: distributed.DistEnv, writer: RunWriter, resume: bool) -> Path:
    run = _Run(config, env, writer, resume)
    writer.log(f"config: {config}")
    writer.log(run.describe())
    end, spe = run.end, run.steps_per_epoch
    if run.step >= end:
        writer.log(f"already at step {run.step} of {end}; nothing to train")
        return checkpoint_path(config.out)
    writer.log(f"training from step {run.step} to step {end}")  # the Trainer tab reads it
    has_val = config.val is not None or config.val_fraction > 0
    start = time.perf_counter()
    window_loss, window_n, window_t, paused = 0.0, 0, time.perf_counter(), 0.0
    stop_file = config.out / STOP_FILE if env.is_main else None
    with distributed.StopRequest(stop_file) as stop:
        while run.step < end:
            epoch = run.step // spe
            elapsed = time.perf_counter() - start
            late = config.max_seconds is not None and elapsed > config.max_seconds
            loss, lr, asked, late = run.train_step(stop.poll(), late)
            step = run.step
            window_loss, window_n = (
                window_loss + loss * config.batch_size,
                window_n + config.batch_size,
            )
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
                    f"{progress_bar(step, end)} step {step}/{end} epoch {epoch} "
                    f"loss {record['loss']:.4f} {record['samples_per_s']:.0f} samples/s"
                )
                window_loss, window_n, window_t, paused = 0.0, 0, now, 0.0
            pause_start = time.perf_counter()
            epoch_done = step % spe == 0 and (epoch + 1) % config.val_every == 0
            # A requested stop skips validation: torchrun gives its workers 30 s to exit.
            # Validation comes before the save, so the state records its best.
            early = False
            if has_val and not asked and (epoch_done or step == end or late):
                early = run.validate()
            if step % config.checkpoint_every == 0 or step == end or asked or late or early:
                run.save()
            paused += time.perf_counter() - pause_start
            if early:
                b = run.best or {}
                writer.log(
                    f"early stop after step {step}: {config.early_stop} validation(s) without "
                    f"a median below step {b.get('step')}'s {b.get('median_km', 0):.0f} km; "
                    f"{BEST_FILE} holds that step's weights"
                )
                break
            if asked:
                _log_stop(writer, config, stop.reason, step, env)
                break
            if late:
                writer.log(f"--max-seconds {config.max_seconds:g} reached after step {step}")
                break
    writer.log(f"done: step {run.step} in {time.perf_counter() - start:.1f} s")
    if config.dump_rank_params:
        _dump_params(config.out, run.raw_model, env.rank)
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
    # The weights it started from were checked finite (a NaN loaded from a damaged file is
    # refused by run_state with its own message), so this arose in training.
    message = (
        f"training diverged: {what}, arising during training from finite weights; training "
        f"stopped ({kept}). Try a lower --lr (now {config.lr:g}) or a warm-up "
        "(--warmup-steps 1000), and check the data for extreme embeddings"
    )
    writer.log(message, echo=False)  # the caller reports the error
    return TrainingDivergedError(message)


def _log_stop(writer: RunWriter, config: TrainConfig, reason, step: int, env) -> None:
    writer.log(
        f"stopped after step {step} on request ({reason or 'asked on another process'}); "
        f"checkpoint saved; continue with `locdiff train --resume {config.out}`"
    )
    stop_file = config.out / STOP_FILE
    if env.is_main and stop_file.exists():
        stop_file.unlink()
        writer.log(f"removed {stop_file} (it has been honoured)")


def _dump_params(out: Path, model: CSUNet, rank: int) -> None:
    """Debug aid (``--dump-rank-params``): this process's final parameters."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(out / f"params.rank{rank}.safetensors") as fh:
        fh.write(save_safetensors(tensors))
