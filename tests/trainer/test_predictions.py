import os

import numpy as np
import pytest
import torch

from trainer.predictions import (
    COLUMNS,
    PredictionFileError,
    PredictionRow,
    read_predictions,
    write_predictions,
)

HEADER = ",".join(COLUMNS)
GOOD = "a,1.5,2.5,3.5,-4.5,10.000,20.000,1.5,2.5,0.7500,-8.0,179.0,0.2500,,,"


def read_text(tmp_path, text: str, name: str = "p.csv") -> list[PredictionRow]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return read_predictions(path)


def error(tmp_path, text: str) -> str:
    with pytest.raises(PredictionFileError) as info:
        read_text(tmp_path, text)
    return str(info.value)


def test_columns():
    assert COLUMNS == (
        "id", "best_lat", "best_lon", "centre_lat", "centre_lon", "radius50_km", "radius90_km",
        "cand1_lat", "cand1_lon", "cand1_share", "cand2_lat", "cand2_lon", "cand2_share",
        "cand3_lat", "cand3_lon", "cand3_share",
    )  # fmt: skip


def test_round_trip_with_zero_to_three_candidates(tmp_path):
    rows = [
        PredictionRow('img, "quoted"', 45.0, 7.25, 44.5, 8.0, 12.5, 300.0),
        PredictionRow("été/1", -33.8, 151.2, -30.0, 150.0, 1.0, 2.0, ((-33.8, 151.2, 1.0),)),
        PredictionRow(
            "x",
            0.0,
            -180.0,
            90.0,
            180.0,
            0.0,
            0.0,
            ((1.0, 2.0, 0.5), (3.0, 4.0, 0.25), (-5.0, -6.0, 0.125)),
        ),
    ]
    path = tmp_path / "pred.csv"
    assert write_predictions(path, iter(rows)) == 3
    assert read_predictions(path) == rows
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER + ",engine"
    assert lines[2] == "été/1,-33.800000,151.200000,-30.000000,150.000000,1.000,2.000," + (
        "-33.800000,151.200000,1.0000,,,,,,,"
    )
    assert os.listdir(tmp_path) == ["pred.csv"]


def test_the_engine_column_round_trips_and_is_optional(tmp_path):
    rows = [
        PredictionRow("a", 1, 2, 3, 4, 5, 6, engine="hybrid"),
        PredictionRow("b", 1, 2, 3, 4, 5, 6, engine="geoclip"),
    ]
    path = tmp_path / "pred.csv"
    write_predictions(path, rows)
    assert [r.engine for r in read_predictions(path)] == ["hybrid", "geoclip"]
    assert read_text(tmp_path, HEADER + "\n" + GOOD + "\n")[0].engine == ""  # older files
    assert "column engine: 'magic'" in error(tmp_path, HEADER + ",engine\n" + GOOD + ",magic\n")
    with pytest.raises(ValueError, match="engine 'x' is none of"):
        PredictionRow("c", 1, 2, 3, 4, 5, 6, engine="x")


def test_rows_accept_numpy_and_torch_scalars():
    row = PredictionRow(
        "n", np.float32(1.5), torch.tensor(2.5), 3, 4, np.float64(5), 6, ((np.float32(1), 2, 1),)
    )
    assert row == PredictionRow("n", 1.5, 2.5, 3.0, 4.0, 5.0, 6.0, ((1.0, 2.0, 1.0),))
    assert type(row.best_lat) is float and type(row.candidates[0][0]) is float


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"id": ""}, "id must be a non-empty string"),
        ({"best_lat": 91.0}, "best_lat = 91.0 is outside [-90, 90]"),
        ({"centre_lon": -181.0}, "centre_lon = -181.0 is outside [-180, 180]"),
        ({"radius50_km": -1.0}, "radius50_km = -1.0 is negative"),
        ({"radius90_km": float("nan")}, "radius90_km = nan is not finite"),
        ({"best_lon": "2.0"}, "best_lon = '2.0' is not a number"),
        ({"candidates": ((0.0, 0.0, 1.5),)}, "cand1_share = 1.5 is outside [0, 1]"),
        ({"candidates": ((0.0, 0.0),)}, "each candidate must be (lat, lon, share)"),
        ({"candidates": ((0.0, 0.0, 0.1),) * 4}, "4 candidates; the CSV holds the top 3"),
    ],
)
def test_row_validation(kwargs, expected):
    fields = {
        "id": "r", "best_lat": 0.0, "best_lon": 0.0, "centre_lat": 0.0, "centre_lon": 0.0,
        "radius50_km": 0.0, "radius90_km": 0.0,
    }  # fmt: skip
    with pytest.raises(ValueError) as info:
        PredictionRow(**{**fields, **kwargs})
    assert expected in str(info.value)


def test_write_refuses_repeated_ids_and_leaves_nothing(tmp_path):
    row = PredictionRow("same", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="'same' is predicted twice"):
        write_predictions(tmp_path / "p.csv", [row, row])
    assert os.listdir(tmp_path) == []


def test_read_tolerates_bom_blank_lines_extra_columns_and_order(tmp_path):
    cols = [*COLUMNS[::-1], "note"]
    cells = [*GOOD.split(",")[::-1], "hello"]
    text = "\ufeff" + ",".join(cols) + "\n\n" + ",".join(cells) + "\n"
    (row,) = read_text(tmp_path, text)
    assert row == PredictionRow(
        "a", 1.5, 2.5, 3.5, -4.5, 10.0, 20.0, ((1.5, 2.5, 0.75), (-8.0, 179.0, 0.25))
    )
    assert read_text(tmp_path, HEADER + "\n") == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (GOOD.replace("a,1.5", "a,north"), "line 2, column best_lat: 'north' is not a number"),
        (GOOD.replace("a,1.5,2.5", "a,1.5,"), "line 2, column best_lon: empty; a number"),
        (GOOD.replace("-4.5", "-194.5"), "line 2, column centre_lon: -194.5 is outside"),
        (GOOD.replace("10.000", "-10"), "line 2, column radius50_km: -10 is negative"),
        (GOOD.replace("20.000", "inf"), "line 2, column radius90_km: inf is not finite"),
        (GOOD.replace("0.7500", "1.2"), "line 2, column cand1_share: 1.2 is outside [0, 1]"),
        (GOOD.replace(",179.0,", ",,"), "line 2, column cand2_lon: empty while cand2_lat"),
        (
            GOOD.replace(",-8.0,179.0,0.2500,,,", ",,,,1,2,0.1"),
            "line 2, column cand3_lat: set while candidate 2 is empty",
        ),
        (GOOD.replace(",1.5,2.5,0.7500,", ",,,,"), "column cand2_lat: set while candidate 1"),
        (GOOD[1:], "line 2, column id: empty; every row needs an id"),
        (GOOD + ",", "line 2: 17 cells but the header has 16"),
        (GOOD + "\n" + GOOD, "line 3, column id: 'a' repeats line 2"),
    ],
)
def test_read_errors_name_line_and_column(tmp_path, line, expected):
    msg = error(tmp_path, HEADER + "\n" + line + "\n")
    assert msg.startswith(str(tmp_path / "p.csv"))
    assert expected in msg


def test_read_errors_of_the_file_itself(tmp_path):
    assert "the file is empty; it needs the header id,best_lat" in error(tmp_path, "")
    msg = error(tmp_path, "id,best_lat,best_lon\n")
    assert "line 1: missing column(s) centre_lat, centre_lon, radius50_km" in msg
    assert "column(s) id repeat" in error(tmp_path, HEADER + ",id\n")
    (tmp_path / "latin1.csv").write_bytes(HEADER.encode() + b"\n\xe9t\xe9,1,2,3,4,5,6,,,,,,,,,\n")
    with pytest.raises(PredictionFileError, match="not UTF-8 text"):
        read_predictions(tmp_path / "latin1.csv")
    with pytest.raises(PredictionFileError, match="no such file; write it with `locdiff predict"):
        read_predictions(tmp_path / "missing.csv")
    with pytest.raises(PredictionFileError, match="cannot be read"):
        read_predictions(tmp_path)
    msg = error(tmp_path, HEADER + "\n" + GOOD + '\n"b\n')
    assert "line 3: not a valid CSV file" in msg
