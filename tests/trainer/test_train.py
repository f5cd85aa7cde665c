"""Training learns, honestly: on a generated task whose embeddings are a smooth, noisy function
of the location, a small model beats an unconditional one of the same size by a wide margin.
And the command line trains, predicts and evaluates end to end."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from locdiff_core.geo import great_circle_km
from locdiff_core.predictor import Predictor, PredictorConfig
from locdiff_core.run_layout import checkpoint_step
from trainer.cli import main
from trainer.data import save_embeddings
from trainer.synthetic import SyntheticTask
from trainer.train import RunWriter, TrainConfig, train

SMALL = {"widths": (256, 128), "dim_bottleneck": 64, "dropout": 0.0, "lr": 1e-3}


def accuracy_750(run: Path, emb, lat, lon) -> float:
    pred = Predictor.from_checkpoint(run).predict(emb, PredictorConfig(num_samples=8, num_steps=10))
    best = torch.tensor([p.best for p in pred], dtype=torch.float64)
    d = great_circle_km(best[:, 0], best[:, 1], torch.tensor(lat), torch.tensor(lon))
    return 100.0 * float((d <= 750.0).double().mean())


def test_a_small_model_learns_where_embeddings_come_from(tmp_path):
    task = SyntheticTask()
    emb, lat, lon = task.sample(6000, seed=1)
    t_emb, t_lat, t_lon = task.sample(200, seed=99)
    save_embeddings(tmp_path / "train.npz", emb, lat, lon)
    save_embeddings(tmp_path / "blind.npz", np.zeros_like(emb), lat, lon)
    scores = {}
    for name, data in (("conditional", "train.npz"), ("unconditional", "blind.npz")):
        config = TrainConfig(
            data=tmp_path / data,
            out=tmp_path / name,
            degree=15,
            epochs=100,
            batch_size=256,
            max_steps=150,
            **SMALL,
        )
        train(config, RunWriter(config.out, echo=lambda line: None))
        test_emb = t_emb if name == "conditional" else np.zeros_like(t_emb)
        scores[name] = accuracy_750(config.out, test_emb, t_lat, t_lon)
    print(scores)
    assert scores["conditional"] >= 60.0
    assert scores["conditional"] - scores["unconditional"] >= 30.0


def test_train_predict_eval_from_the_command_line(tmp_path, capsys):
    task = SyntheticTask(dim_cond=16)
    save_embeddings(tmp_path / "train.npz", *task.sample(300, seed=1))
    emb, lat, lon = task.sample(20, seed=2)
    save_embeddings(tmp_path / "test.npz", emb, lat, lon, ids=[f"img{i}" for i in range(20)])
    run = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "train.npz"), "--val", str(tmp_path / "test.npz")]
    args += ["--out", str(run), "--degree", "6", "--epochs", "2", "--batch-size", "100"]
    args += ["--widths", "32", "--bottleneck", "16", "--log-every", "2", "--seed", "3"]
    assert main(args) == 0
    assert (run / "checkpoint.safetensors").exists() and (run / "train.log").exists()
    # what the app's Trainer tab reads: the step range in the log, the step of the checkpoint
    assert "training from step 0 to step 6" in (run / "train.log").read_text()
    assert checkpoint_step(run / "checkpoint.safetensors") == 6
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [2, 4, 6]
    assert all({"epoch", "loss", "lr", "samples_per_s"} <= r.keys() for r in steps)
    vals = [r["val"] for r in records if "val" in r]
    assert len(vals) == 2 and all("acc_750km" in vals[0][k] for k in ("best", "centre", "cluster"))
    pred = tmp_path / "pred.csv"
    args = ["predict", "--checkpoint", str(run), "--data", str(tmp_path / "test.npz")]
    assert main([*args, "--out", str(pred), "--samples", "4", "--steps", "5"]) == 0
    rows = pred.read_text().splitlines()
    assert len(rows) == 21 and rows[1].startswith("img0,")
    # --best-guess cluster: the same samples (the same candidates), the first cluster as best.
    by_cluster = tmp_path / "cluster.csv"
    extra = ["--samples", "4", "--steps", "5", "--best-guess", "cluster"]
    assert main([*args, "--out", str(by_cluster), *extra]) == 0
    mode_rows = list(csv.DictReader(pred.open()))
    cluster_rows = list(csv.DictReader(by_cluster.open()))
    for m, c in zip(mode_rows, cluster_rows, strict=True):
        assert m["cand1_lat"] == c["cand1_lat"] == c["best_lat"] and m["cand1_lon"] == c["best_lon"]
    assert any(m["best_lat"] != c["best_lat"] for m, c in zip(mode_rows, cluster_rows, strict=True))
    capsys.readouterr()
    assert main(["eval", "--pred", str(pred), "--data", str(tmp_path / "test.npz"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["best"]["count"] == 20


def test_bad_training_input_is_reported(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "r")]) == 2
    assert "none.npz" in capsys.readouterr().err
    task = SyntheticTask(dim_cond=8)
    save_embeddings(tmp_path / "a.npz", *task.sample(10, seed=1))
    save_embeddings(tmp_path / "b.npz", *SyntheticTask(dim_cond=4).sample(10, seed=1))
    with pytest.raises(ValueError, match="width 4"):
        train(TrainConfig(data=tmp_path / "a.npz", val=tmp_path / "b.npz", out=tmp_path / "r"))
