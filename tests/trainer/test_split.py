"""The distance-aware split: no validation photo within ``min_km`` of a training photo, about the
asked share held out, the same split for the same seed, and a split file a resume reads back."""

import json

import numpy as np
import pytest
import torch

from locdiff_core.checkpoint import read_config
from locdiff_core.geo import great_circle_km
from trainer.cli import main
from trainer.data import save_embeddings
from trainer.split import drop_near, read_split, split_by_distance, write_split
from trainer.synthetic import SyntheticTask


def _photos(n=3000, seed=1):
    # Clustered like photo libraries (clusters of ~30 km), plus a little background.
    lat, lon = SyntheticTask(cluster_km=30.0, num_clusters=20).locations(n, seed=seed)
    return lat, lon


def _min_km(lat, lon, a, b) -> float:
    d = great_circle_km(
        torch.tensor(lat[a])[:, None],
        torch.tensor(lon[a])[:, None],
        torch.tensor(lat[b])[None],
        torch.tensor(lon[b])[None],
    )
    return float(d.min())


@pytest.mark.parametrize(("fraction", "min_km"), [(0.1, 1.0), (0.2, 20.0), (0.05, 0.0)])
def test_validation_photos_keep_their_distance(fraction, min_km):
    lat, lon = _photos()
    split = split_by_distance(lat, lon, fraction, min_km, seed=4)
    n = len(lat)
    assert len(split.train) + len(split.val) + len(split.dropped) == n
    assert set(split.train).isdisjoint(split.val) and set(split.dropped).isdisjoint(split.val)
    assert 0.5 * fraction * n <= len(split.val) <= 1.1 * fraction * n
    if min_km > 0:
        assert _min_km(lat, lon, split.val, split.train) >= min_km
        # The dropped photos are exactly the ones that were too close.
        if len(split.dropped):
            assert _min_km(lat, lon, split.val, split.dropped) < min_km
    again = split_by_distance(lat, lon, fraction, min_km, seed=4)
    assert np.array_equal(again.val, split.val) and np.array_equal(again.train, split.train)
    other = split_by_distance(lat, lon, fraction, min_km, seed=5)
    assert not np.array_equal(other.val, split.val)


def test_drop_near_keeps_points_at_exactly_the_distance():
    # Two points on the equator 1 degree apart: 111.19 km.
    lat, lon = np.zeros(2), np.array([0.0, 1.0])
    keep, near = drop_near(lat, lon, np.array([1]), lat[:1], lon[:1], 111.0)
    assert list(keep) == [1] and len(near) == 0
    keep, near = drop_near(lat, lon, np.array([1]), lat[:1], lon[:1], 112.0)
    assert len(keep) == 0 and list(near) == [1]


def test_the_split_file_round_trips_and_names_problems(tmp_path):
    lat, lon = _photos(500)
    ids = np.asarray([f"img{i}" for i in range(len(lat))])
    split = split_by_distance(lat, lon, 0.2, 5.0, seed=0)
    path = tmp_path / "split.json"
    write_split(path, split, ids, {"val_fraction": 0.2, "val_min_km": 5.0})
    back = read_split(path, ids, lat, lon, 5.0)
    for name in ("train", "val", "dropped"):
        assert np.array_equal(getattr(back, name), getattr(split, name))
    with pytest.raises(ValueError, match=r"img\d+.*not in the data set"):
        read_split(path, ids[:10], lat[:10], lon[:10], 5.0)
    with pytest.raises(ValueError, match="missing"):
        read_split(tmp_path / "none.json", ids, lat, lon, 5.0)


def test_impossible_splits_are_refused():
    lat, lon = np.zeros(50), np.zeros(50)  # every photo in one place
    with pytest.raises(ValueError, match="raise --val-fraction or lower --val-min-km"):
        split_by_distance(lat, lon, 0.1, 1.0)
    with pytest.raises(ValueError, match="less than one photo"):
        split_by_distance(lat, lon, 0.01, 1.0)


def test_training_holds_out_the_split_and_a_resume_reuses_it(tmp_path):
    data, run = tmp_path / "train.npz", tmp_path / "run"
    save_embeddings(data, *SyntheticTask(dim_cond=16, cluster_km=30.0).sample(400, seed=1))
    args = ["train", "--data", str(data), "--out", str(run), "--degree", "4", "--widths", "16"]
    args += ["--bottleneck", "8", "--anchors", "32", "--batch-size", "32", "--epochs", "2"]
    args += ["--val-fraction", "0.2", "--val-min-km", "100", "--val-items", "8"]
    assert main([*args, "--log-every", "4", "--max-steps", "4"]) == 0
    split = json.loads((run / "split.json").read_text())
    assert read_config(run).training["num_train"] == split["num_train"]
    assert split["num_train"] + split["num_val"] + split["num_dropped"] == 400
    before = (run / "split.json").read_bytes()
    assert main(["train", "--resume", str(run), "--max-steps", "12"]) == 0
    assert (run / "split.json").read_bytes() == before
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in records if "val" in r]
    epoch_end = split["num_train"] // 32
    assert [r["step"] for r in vals] == [4, epoch_end, 12]
    assert vals[0]["val"]["best"]["count"] == 8 and "acc_1km" in vals[0]["val"]["centre"]
    assert all(
        {"step", "epoch", "loss", "lr", "samples_per_s", "time"} <= r.keys()
        for r in records
        if "val" not in r
    )


def test_a_separate_validation_set_also_keeps_its_distance(tmp_path):
    task = SyntheticTask(dim_cond=16, cluster_km=30.0)
    data, val, run = tmp_path / "train.npz", tmp_path / "val.npz", tmp_path / "run"
    save_embeddings(data, *task.sample(300, seed=1))
    save_embeddings(val, *task.sample(20, seed=2))
    args = ["train", "--data", str(data), "--val", str(val), "--val-min-km", "50"]
    args += ["--out", str(run), "--degree", "3", "--widths", "16", "--bottleneck", "8"]
    args += ["--anchors", "32", "--batch-size", "32", "--max-steps", "1", "--val-items", "4"]
    assert main(args) == 0
    log = (run / "train.log").read_text()
    dropped = int(log.split(" training photos within 50.0 km")[0].rsplit(" ", 1)[-1])
    assert dropped > 0
    assert read_config(run).training["num_train"] == 300 - dropped
