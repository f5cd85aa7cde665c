import json
import math
import re

import numpy as np
import pytest

from locdiff_core.geo import EARTH_RADIUS_KM
from trainer import cli
from trainer.data import save_embeddings
from trainer.evaluate import evaluate, format_table
from trainer.predictions import PredictionRow, write_predictions

# Errors of the best guess and of the centre, per image, in km; none lies within 1 m of a
# threshold, so the CSV's 6-decimal degrees (0.1 m) cannot move an image across one.
BEST_KM = [0.5, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 9000.0]
CENTRE_KM = [2.0, 30.0, 150.0, 800.0, 3000.0, 3000.0, 3000.0, 9500.0]
IDS = [f"img{i}" for i in range(len(BEST_KM))]
TRUE_LON = [-170.0 + 45.0 * i for i in range(len(BEST_KM))]


def north_of_equator(km: float) -> float:
    """Latitude of the point ``km`` due north of the equator (a meridian arc)."""
    return math.degrees(km / EARTH_RADIUS_KM)


@pytest.fixture
def test_set(tmp_path):
    """A dataset of images on the equator, in two shards, and predictions at known distances,
    written in another order than the dataset's."""
    folder = tmp_path / "test"
    folder.mkdir()
    emb = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    for name, part in (("0.npz", slice(0, 5)), ("1.npz", slice(5, 8))):
        n = part.stop - part.start
        save_embeddings(folder / name, emb[part], np.zeros(n), TRUE_LON[part], ids=IDS[part])
    rows = [
        PredictionRow(
            IDS[i],
            north_of_equator(BEST_KM[i]),
            TRUE_LON[i],
            north_of_equator(CENTRE_KM[i]),
            TRUE_LON[i],
            5.0,
            50.0,
        )
        for i in reversed(range(8))
    ]
    pred = tmp_path / "pred.csv"
    write_predictions(pred, rows)
    return pred, folder, rows


def geoscore_mean(distances):
    return sum(5000.0 * math.exp(-d / 1492.7) for d in distances) / len(distances)


def test_exact_accuracies(test_set):
    pred, folder, _ = test_set
    result = evaluate(pred, folder)
    assert set(result) == {"best", "centre"}
    best, centre = result["best"], result["centre"]
    assert best["count"] == centre["count"] == 8
    assert [best[f"acc_{t}km"] for t in (1, 25, 200, 750, 2500)] == [12.5, 25.0, 37.5, 50.0, 75.0]
    assert [centre[f"acc_{t}km"] for t in (1, 25, 200, 750, 2500)] == [0, 12.5, 37.5, 37.5, 50.0]
    assert best["median_km"] == pytest.approx(750.0, abs=1e-3)
    assert centre["median_km"] == pytest.approx(1900.0, abs=1e-3)
    assert best["mean_km"] == pytest.approx(sum(BEST_KM) / 8, abs=1e-3)
    assert best["geoscore"] == pytest.approx(geoscore_mean(BEST_KM), rel=1e-6)
    assert centre["geoscore"] == pytest.approx(geoscore_mean(CENTRE_KM), rel=1e-6)


def test_format_table(test_set):
    table = format_table(evaluate(*test_set[:2]))
    header, best, centre = table.splitlines()
    assert re.split(r"\s{2,}", header) == [
        "guess", "count", "1 km %", "25 km %", "200 km %", "750 km %", "2500 km %", "median km",
        "GeoScore",
    ]  # fmt: skip
    assert best.split()[:8] == ["best", "8", "12.5", "25.0", "37.5", "50.0", "75.0", "750.0"]
    assert centre.split()[:8] == ["centre", "8", "0.0", "12.5", "37.5", "37.5", "50.0", "1900.0"]
    assert len({len(line) for line in table.splitlines()}) == 1  # columns line up


def test_cli_prints_table_and_json(test_set, capsys):
    pred, folder, _ = test_set
    assert cli.main(["eval", "--pred", str(pred), "--data", str(folder)]) == 0
    assert capsys.readouterr().out == format_table(evaluate(pred, folder)) + "\n"
    assert cli.main(["eval", "--pred", str(pred), "--data", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["best"]["acc_2500km"] == 75.0 and result["centre"]["count"] == 8
    assert result == evaluate(pred, folder)


def test_ids_must_match(test_set, tmp_path):
    pred, folder, rows = test_set
    strangers = [PredictionRow(f"other{i}", 0.0, 0.0, 0.0, 0.0, 1.0, 2.0) for i in range(5)]
    write_predictions(pred, rows[:3] + strangers)
    with pytest.raises(ValueError) as info:
        evaluate(pred, folder)
    msg = str(info.value)
    assert f"{pred} does not match {folder}" in msg
    assert "5 of the dataset's 8 ids have no prediction (e.g. 'img0', 'img1', 'img2', ...)" in msg
    assert "5 predicted ids are not in the dataset (e.g. 'other0', 'other1', 'other2', ...)" in msg

    write_predictions(pred, rows[:7])
    with pytest.raises(ValueError) as info:
        evaluate(pred, folder)
    msg = str(info.value)
    assert "1 of the dataset's 8 ids have no prediction (e.g. 'img0')" in msg
    assert "not in the dataset" not in msg


def test_cli_errors_exit_2_with_the_message(test_set, tmp_path, capsys):
    pred, folder, _ = test_set
    write_predictions(pred, [])
    assert cli.main(["eval", "--pred", str(pred), "--data", str(folder)]) == 2
    assert f"locdiff eval: error: {pred}: holds a header but no predictions" in (
        capsys.readouterr().err
    )
    missing = tmp_path / "nope"
    write_predictions(pred, test_set[2])
    assert cli.main(["eval", "--pred", str(pred), "--data", str(missing)]) == 2
    assert f"{missing}: no such file or directory" in capsys.readouterr().err
    pred.write_text("id\n", encoding="utf-8")
    assert cli.main(["eval", "--pred", str(pred), "--data", str(folder)]) == 2
    assert "line 1: missing column(s) best_lat" in capsys.readouterr().err


def test_cli_requires_both_paths(capsys):
    assert cli.main(["eval", "--pred", "p.csv"]) == 2
    assert "--data" in capsys.readouterr().err
    assert cli.main(["eval", "--checkpoint", "run", "--csv", "t.csv"]) == 2
    assert "--images ROOT" in capsys.readouterr().err
