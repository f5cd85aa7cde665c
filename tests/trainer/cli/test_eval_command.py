"""``locdiff eval`` end to end from images: embed a CSV's images, train a tiny model on them,
then score the checkpoint on the images with its own encoder; encoder identities travel from
the encoder through the dataset into the checkpoint, and another encoder's output is refused."""

import json

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from locdiff_core.checkpoint import read_config
from locdiff_core.image_encoder import EncoderConfig, ImageEncoder
from trainer import cli
from trainer.data import load_embeddings
from trainer.embed import EmbedConfig, build_dataset
from trainer.evaluate import evaluate
from trainer.train import RunWriter, TrainConfig, train

PLACES = [(48.86, 2.35), (-33.87, 151.21), (40.71, -74.01), (35.68, 139.65), (-22.91, -43.17)]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_encoder):
    """Ten images with positions in a CSV (plus a missing one and a bad row), their dataset,
    and a model trained on it for a few steps."""
    root = tmp_path_factory.mktemp("eval")
    images = root / "images"
    images.mkdir()
    lines = ["IMG_ID,LAT,LON"]
    for i in range(10):
        rng = np.random.default_rng(i)
        pixels = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.jpg")
        lat, lon = PLACES[i % len(PLACES)]
        lines.append(f"{i}.jpg,{lat},{lon}")
    lines += ["gone.jpg,1.0,2.0", "bad.jpg,1.0,east"]
    table = root / "test.csv"
    table.write_text("\n".join(lines) + "\n")
    encoder = ImageEncoder.load(tiny_encoder)
    build_dataset(EmbedConfig(out=root / "data", csv=table, images=images), encoder)
    config = TrainConfig(
        data=root / "data",
        out=root / "run",
        degree=4,
        epochs=1,
        batch_size=4,
        widths=(32,),
        dim_bottleneck=8,
        max_steps=3,
    )
    train(config, RunWriter(config.out, echo=lambda line: None))
    return {"root": root, "table": table, "images": images, "encoder": encoder}


def eval_args(run, tiny_encoder, *extra) -> list[str]:
    return [
        "eval",
        "--checkpoint",
        str(run["root"] / "run"),
        "--csv",
        str(run["table"]),
        "--images",
        str(run["images"]),
        "--encoder-weights",
        str(tiny_encoder.weights),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--samples",
        "2",
        "--steps",
        "2",
        *extra,
    ]


def test_the_encoder_identity_travels_into_dataset_and_checkpoint(run):
    identity = run["encoder"].identity
    assert load_embeddings(run["root"] / "data").encoder == identity
    assert read_config(run["root"] / "run").encoder == identity


def test_eval_from_images_prints_the_table_and_what_was_skipped(run, tiny_encoder, capsys):
    pred = run["root"] / "pred.csv"
    assert cli.main(eval_args(run, tiny_encoder, "--out", str(pred))) == 0
    out = capsys.readouterr().out
    header, best, centre = out.splitlines()[:3]
    assert header.split()[:2] == ["guess", "count"] and "GeoScore" in header
    assert best.split()[:2] == ["best", "10"] and centre.split()[:2] == ["centre", "10"]
    assert "10 of 12 images scored; skipped 1 bad_row, 1 missing" in out
    assert "line 13: longitude 'east' is not a number" in out and "gone.jpg" in out
    # the same numbers as scoring the saved predictions against the embedded dataset
    assert cli.main(eval_args(run, tiny_encoder, "--json")) == 0
    from_images = json.loads(capsys.readouterr().out)
    assert from_images["skipped"] == {"bad_row": 1, "missing": 1} and from_images["images"] == 12
    from_file = evaluate(pred, run["root"] / "data")
    for guess in ("best", "centre"):
        assert from_images[guess]["count"] == 10
        assert from_images[guess]["median_km"] == pytest.approx(
            from_file[guess]["median_km"], abs=1e-3
        )
        assert from_images[guess]["acc_2500km"] == from_file[guess]["acc_2500km"]


def test_eval_refuses_weights_of_another_encoder(run, tiny_encoder, tmp_path, capsys):
    state = {f"visual.{k}": v * 2 for k, v in run["encoder"].tower.state_dict().items()}
    other = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, other)
    args = eval_args(run, tiny_encoder)
    args[args.index("--encoder-weights") + 1] = str(other)
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "other.safetensors: gives custom model tiny-vit with weights sha256" in err
    assert "but the checkpoint was trained on" in err and "another weights file" in err
    # and embeddings made with those weights are refused by `locdiff predict`
    encoder = ImageEncoder.load(EncoderConfig(tiny_encoder.model, None, other, "cpu"))
    data = tmp_path / "other_data"
    build_dataset(EmbedConfig(out=data, csv=run["table"], images=run["images"]), encoder)
    predict = ["predict", "--checkpoint", str(run["root"] / "run"), "--data", str(data)]
    assert cli.main([*predict, "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "was embedded with custom model tiny-vit" in err and "another weights file" in err


def test_eval_names_a_wrong_csv_or_folder_before_loading_a_model(run, tiny_encoder, capsys):
    args = eval_args(run, tiny_encoder)
    args[args.index("--checkpoint") + 1] = str(run["root"] / "no_run_here")  # never reached
    wrong_images = list(args)
    wrong_images[args.index("--images") + 1] = str(run["root"] / "typo")
    assert cli.main(wrong_images) == 2
    assert "typo: no such folder" in capsys.readouterr().err
    wrong_csv = list(args)
    wrong_csv[args.index("--csv") + 1] = str(run["root"] / "typo.csv")
    assert cli.main(wrong_csv) == 2
    err = capsys.readouterr().err
    assert "typo.csv" in err and "no_run_here" not in err


@pytest.mark.slow
def test_eval_with_the_geoclip_engine_needs_no_checkpoint(vit_l14, geoclip_cache, tmp_path, capsys):
    from pathlib import Path

    gps = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "exif-samples" / "jpg"
    names = ["DSCN0010.jpg", "DSCN0012.jpg"]
    table = tmp_path / "test.csv"
    table.write_text("IMG_ID,LAT,LON\n" + "".join(f"{n},43.47,11.88\n" for n in names))
    args = ["eval", "--engine", "geoclip", "--csv", str(table), "--images", str(gps / "gps")]
    args += ["--encoder-weights", str(vit_l14[1]), "--cache-dir", str(geoclip_cache)]
    assert cli.main([*args, "--device", "cpu", "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["engine"] == "geoclip" and result["best"]["count"] == 2
    assert result["centre"]["count"] == 2 and result["images"] == 2
