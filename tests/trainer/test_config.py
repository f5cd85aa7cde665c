"""Training settings: the global batch splits evenly or is refused, the learning-rate schedules,
the JSON round trip a resume relies on, and which settings a resume may change."""

import dataclasses
import json
from pathlib import Path

import pytest

from locdiff_core.diffusion import DiffusionConfig
from trainer.config import LRSchedule, Precision, TrainConfig, learning_rate, resume_mismatches

BASE = TrainConfig(data=Path("d.npz"), out=Path("run"), lr=1e-3)


def test_the_global_batch_splits_over_processes_and_micro_steps():
    config = dataclasses.replace(BASE, batch_size=512, accum_steps=2)
    assert config.micro_batch(1) == 256 and config.micro_batch(4) == 64
    with pytest.raises(ValueError, match=r"3 process\(es\) x 2 accumulation.*multiple of 6"):
        config.micro_batch(3)


def test_learning_rate_schedules():
    const = dataclasses.replace(BASE, warmup_steps=10, lr_schedule=LRSchedule.CONSTANT)
    assert learning_rate(const, 0, 100) == pytest.approx(1e-4)
    assert learning_rate(const, 9, 100) == learning_rate(const, 99, 100) == 1e-3
    cos = dataclasses.replace(const, lr_schedule=LRSchedule.COSINE)
    assert learning_rate(cos, 10, 110) == pytest.approx(1e-3)
    assert learning_rate(cos, 60, 110) == pytest.approx(0.55e-3)
    assert learning_rate(cos, 110, 110) == learning_rate(cos, 500, 110) == pytest.approx(1e-4)


def test_settings_round_trip_through_json():
    config = dataclasses.replace(
        BASE,
        val=Path("v.npz"),
        widths=(64, 32),
        precision=Precision.FP32,
        lr_schedule=LRSchedule.CONSTANT,
        warmup_steps=7,
        ema_decay=0.0,
        cond_rms_norm=False,
        diffusion=DiffusionConfig(num_anchors=99),
    )
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({**config.to_dict(), "future_knob": 1})


def test_a_resume_may_change_how_a_run_proceeds_but_not_what_it_computes():
    constant = dataclasses.replace(BASE, lr_schedule=LRSchedule.CONSTANT)
    harmless = dataclasses.replace(
        constant, device="cuda", accum_steps=4, max_steps=7, checkpoint_every=3, epochs=99
    )
    assert resume_mismatches(constant, harmless) == []
    changed = dataclasses.replace(BASE, degree=5, batch_size=64)
    problems = resume_mismatches(BASE, changed)
    assert len(problems) == 2 and problems[0].startswith("degree: 47 -> 5")
    cosine = dataclasses.replace(BASE, lr_schedule=LRSchedule.COSINE)
    assert resume_mismatches(cosine, dataclasses.replace(cosine, epochs=20)) == ["epochs: 10 -> 20"]
    other_loss = dataclasses.replace(BASE, diffusion=DiffusionConfig(num_anchors=7))
    assert "diffusion" in resume_mismatches(BASE, other_loss)[0]


def test_inconsistent_settings_are_refused():
    with pytest.raises(ValueError, match="not both"):
        dataclasses.replace(BASE, val=Path("v"), val_fraction=0.1).validate()
    with pytest.raises(ValueError, match="needs --val-fraction"):
        dataclasses.replace(BASE, val_min_km=1.0).validate()
    with pytest.raises(ValueError, match="accum_steps"):
        dataclasses.replace(BASE, accum_steps=0).validate()


def test_recipes_set_what_they_name_and_the_command_line_offers_each():
    import argparse

    from locdiff_core.shdd import KLEstimator
    from locdiff_core.train_options import add_train_options
    from trainer.config import RECIPES, with_recipe

    paper = with_recipe(BASE, "paper")
    assert paper.lr == 1e-4 and paper.lr_schedule is LRSchedule.CONSTANT and paper.dropout == 0.3
    assert paper.ema_decay == 0 and not paper.cond_rms_norm and paper.diffusion.cond_noise == 0
    assert paper.diffusion.kl_estimator is KLEstimator.UNIFORM
    assert with_recipe(BASE, "default") == BASE
    default = TrainConfig(data=Path("d.npz"), out=Path("run"))  # the best measured recipe
    assert default.cond_rms_norm and default.ema_decay == 0.999 and default.lr == 3e-4
    assert default.lr_schedule is LRSchedule.COSINE and default.warmup_steps == 100
    with pytest.raises(ValueError, match="the recipes are paper, default"):
        with_recipe(BASE, "fast")
    parser = argparse.ArgumentParser()
    add_train_options(parser)
    (action,) = [a for a in parser._actions if a.dest == "recipe"]
    assert sorted(action.choices) == sorted(RECIPES)


def test_a_state_saved_before_newer_settings_existed_reads_as_it_trained():
    saved = BASE.to_dict()
    for name in ("ema_decay", "cond_rms_norm"):
        del saved[name]
    del saved["diffusion"]["cond_noise"]
    old = TrainConfig.from_dict(saved)
    assert old.ema_decay == 0 and old.cond_rms_norm is False and old.diffusion.cond_noise == 0
