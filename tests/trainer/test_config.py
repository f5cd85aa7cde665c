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
    const = dataclasses.replace(BASE, warmup_steps=10)
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
        lr_schedule=LRSchedule.COSINE,
        diffusion=DiffusionConfig(num_anchors=99),
    )
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({**config.to_dict(), "future_knob": 1})


def test_a_resume_may_change_how_a_run_proceeds_but_not_what_it_computes():
    harmless = dataclasses.replace(
        BASE, device="cuda", accum_steps=4, max_steps=7, checkpoint_every=3, epochs=99
    )
    assert resume_mismatches(BASE, harmless) == []
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
