"""The best validation is kept beside the last checkpoint (``best.safetensors``), predictors
load it from a run folder by default, and ``early_stop`` ends a run that stopped improving;
a resume carries the best and its count on."""

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from locdiff_core.checkpoint import load_checkpoint, model_file, read_config
from locdiff_core.run_layout import BEST_FILE, CHECKPOINT_FILE
from trainer import run_state
from trainer import train as train_module
from trainer.train import RunWriter, TrainConfig, train

TINY = {"widths": (32,), "dim_bottleneck": 16, "dropout": 0.0, "lr": 1e-3, "degree": 6}


def config(folder, **extra) -> TrainConfig:
    fields = {"data": folder / "train.npz", "val": folder / "val.npz", "out": folder / "run"}
    return TrainConfig(
        **(fields | {"batch_size": 100, "val_samples": 4, "val_steps": 4} | TINY | extra)
    )


def test_the_best_validation_is_kept_and_loaded_from_a_run_folder(train_val):
    cfg = config(train_val, epochs=5)
    train(cfg, RunWriter(cfg.out, echo=lambda line: None))
    records = [json.loads(x) for x in (cfg.out / "metrics.jsonl").read_text().splitlines()]
    vals = [(r["val"]["best"]["median_km"], r["step"]) for r in records if "val" in r]
    assert len(vals) == 5
    best_median = min(m for m, _ in vals)
    best_step = next(s for m, s in vals if m == best_median)  # the first of equal medians
    assert read_config(cfg.out / BEST_FILE).training["step"] == best_step
    assert read_config(cfg.out).training["step"] == 20  # the last checkpoint stays the last
    assert model_file(cfg.out) == cfg.out / BEST_FILE
    assert model_file(cfg.out / CHECKPOINT_FILE) == cfg.out / CHECKPOINT_FILE
    model, loaded = load_checkpoint(cfg.out)
    assert loaded.training["step"] == best_step
    saved = load_file(cfg.out / BEST_FILE)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), saved[name].numpy())
    state = run_state.parse_training_state((cfg.out / "training_state.pt").read_bytes(), "s")
    assert state.best["step"] == best_step and state.best["median_km"] == best_median


def _scripted(monkeypatch, medians: list[float]) -> None:
    """Validation answers the given medians in turn (the training itself is real)."""
    answers = iter(medians)

    def validate_model(model, ckpt, data, train_cfg, rows=None):
        row = {"acc_200km": 0.0, "acc_750km": 0.0, "median_km": next(answers)}
        return {"best": row, "centre": row}

    monkeypatch.setattr(train_module, "validate_model", validate_model)


def test_early_stop_ends_a_run_that_stopped_improving_and_a_resume_counts_on(
    train_val, monkeypatch
):
    lines = []
    _scripted(monkeypatch, [500.0, 400.0, 450.0, 420.0])
    cfg = config(train_val, epochs=10, early_stop=2)
    train(cfg, RunWriter(cfg.out, echo=lines.append))
    log = "\n".join(lines)
    assert "early stop after step 16: 2 validation(s) without a median below step 8's 400 km" in log
    assert read_config(cfg.out / BEST_FILE).training["step"] == 8
    assert read_config(cfg.out).training["step"] == 16  # saved where it stopped
    state = run_state.parse_training_state((cfg.out / "training_state.pt").read_bytes(), "s")
    assert state.step == 16 and state.best == {"step": 8, "median_km": 400.0, "stale": 2}
    # a resume with more patience carries the count on: one more worse validation stops it
    _scripted(monkeypatch, [430.0, 390.0])
    lines.clear()
    train(
        config(train_val, epochs=10, early_stop=3),
        RunWriter(cfg.out, echo=lines.append),
        resume=True,
    )
    assert any("early stop after step 20: 3 validation(s)" in x for x in lines)


def test_early_stop_needs_a_non_negative_count(train_val):
    with pytest.raises(ValueError, match="early_stop must be >= 0"):
        config(train_val, early_stop=-1).validate()
