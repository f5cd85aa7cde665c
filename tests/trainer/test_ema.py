"""The weight average: its update rule and warm-up, swapping it in and out, and a run with one:
the checkpoints a predictor loads hold the average, the training state both weights, and a
resumed run ends where an uninterrupted one does."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from locdiff_core.run_layout import BEST_FILE, CHECKPOINT_FILE, STATE_FILE
from trainer import run_state
from trainer.ema import WeightAverage
from trainer.train import RunWriter, TrainConfig, train

TINY = {"widths": (32,), "dim_bottleneck": 16, "dropout": 0.0, "lr": 1e-3, "degree": 6}


def test_the_average_follows_the_update_rule_with_its_warm_up():
    model = torch.nn.Linear(3, 2)
    ema = WeightAverage(model, decay=0.9)
    assert ema.rate(0) == pytest.approx(0.1) and ema.rate(1000) == 0.9
    start = {k: v.clone() for k, v in model.state_dict().items()}
    expected = {k: v.clone() for k, v in start.items()}
    for step in range(30):
        with torch.no_grad():
            model.weight.add_(0.5)
            model.bias.sub_(0.25)
        ema.update(model, step)
        d = ema.rate(step)
        for k, v in model.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v
    for k, v in ema.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    # the average lags the weights, which moved by 15 per weight
    assert float((model.weight.detach() - ema.average["weight"]).abs().min()) > 1.0


def test_applied_swaps_the_average_in_and_restores_the_weights_even_on_error():
    model = torch.nn.Linear(3, 2)
    own = {k: v.clone() for k, v in model.state_dict().items()}
    ema = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.mul_(3.0)
    trained = model.weight.clone()
    with ema.applied(model) as inside:
        torch.testing.assert_close(inside.weight, own["weight"])
    torch.testing.assert_close(model.weight, trained)
    with pytest.raises(RuntimeError, match="boom"), ema.applied(model):
        raise RuntimeError("boom")
    torch.testing.assert_close(model.weight, trained)


def test_a_saved_average_that_does_not_fit_is_refused_by_name():
    ema = WeightAverage(torch.nn.Linear(3, 2), decay=0.5)
    with pytest.raises(ValueError, match=r"missing \['bias'\]"):
        ema.load_state_dict({"weight": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match=r"'weight' has shape \(3, 3\), the network's \(2, 3\)"):
        ema.load_state_dict({"weight": torch.zeros(3, 3), "bias": torch.zeros(2)})
    with pytest.raises(ValueError, match="decay must be in"):
        WeightAverage(torch.nn.Linear(1, 1), decay=1.0)


def _config(folder, out: str, **extra) -> TrainConfig:
    return TrainConfig(
        data=folder / "train.npz",
        val=folder / "val.npz",
        out=folder / out,
        batch_size=100,
        epochs=4,
        val_every=2,
        val_items=8,
        val_samples=4,
        val_steps=4,
        **(TINY | {"ema_decay": 0.9} | extra),
    )


def _state(run):
    return run_state.parse_training_state((run / STATE_FILE).read_bytes(), str(run))


def test_a_run_with_an_average_saves_it_for_sampling_and_resumes_exactly(train_val):
    cfg = _config(train_val, "whole")
    train(cfg, RunWriter(cfg.out, echo=lambda line: None))
    state = _state(cfg.out)
    saved = load_file(cfg.out / CHECKPOINT_FILE)
    assert state.ema is not None and saved.keys() == state.ema.keys() == state.model.keys()
    for name, value in saved.items():  # the checkpoint holds the average, not the weights
        np.testing.assert_array_equal(value.numpy(), state.ema[name].numpy())
    moved = max(float((state.model[k] - state.ema[k]).abs().max()) for k in saved)
    assert moved > 1e-4
    assert (cfg.out / BEST_FILE).exists()
    # stopped after one epoch, then resumed: the same weights and average as the whole run
    part = _config(train_val, "parts", max_steps=4)
    train(part, RunWriter(part.out, echo=lambda line: None))
    assert _state(part.out).step == 4
    rest = _config(train_val, "parts")
    train(rest, RunWriter(rest.out, echo=lambda line: None), resume=True)
    resumed = _state(rest.out)
    for name in saved:
        torch.testing.assert_close(resumed.model[name], state.model[name], rtol=0, atol=1e-6)
        torch.testing.assert_close(resumed.ema[name], state.ema[name], rtol=0, atol=1e-6)


def test_a_resume_may_not_add_or_drop_the_average(train_val):
    plain = _config(train_val, "run", ema_decay=0.0, max_steps=4)
    train(plain, RunWriter(plain.out, echo=lambda line: None))
    assert _state(plain.out).ema is None
    with pytest.raises(ValueError, match=r"ema_decay: 0\.0 -> 0\.9"):
        train(_config(train_val, "run", max_steps=8), RunWriter(plain.out), resume=True)
