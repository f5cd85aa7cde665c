"""``locdiff predict`` from photos with each engine, and its refusals."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from locdiff_core.checkpoint import CheckpointConfig, save_checkpoint
from locdiff_core.diffusion import DiffusionConfig
from locdiff_core.engines import GEOCLIP_BACKBONE
from locdiff_core.nn import CSUNet, CSUNetConfig
from trainer import cli
from trainer.data import load_embeddings, save_embeddings

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "exif-samples" / "jpg"
TINY_768 = {
    "embed_dim": 768,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}


def checkpoint(folder: Path, identity: dict) -> Path:
    torch.manual_seed(0)
    cfg = CSUNetConfig(degree=6, dim_cond=768, widths=(32,), dim_bottleneck=16, dropout=0.0)
    config = CheckpointConfig(cfg, DiffusionConfig(num_steps=20), encoder=identity)
    save_checkpoint(folder, CSUNet(cfg), config)
    return folder


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted((SAMPLES / "gps").glob("DSCN00*.jpg"))[:3]:
        shutil.copy(p, folder / p.name)
    (folder / "zz-broken.jpg").write_text("not a photo")
    return folder


@pytest.fixture
def tiny(tmp_path):
    """A tiny 768-d encoder (config + weights) and a checkpoint trained on it."""
    import open_clip
    from safetensors.torch import save_file

    from locdiff_core.image_encoder import EncoderConfig, ImageEncoder

    (tmp_path / "tiny.json").write_text(json.dumps(TINY_768), encoding="utf-8")
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_file(
        {k: v.contiguous() for k, v in open_clip.CLIP(**TINY_768).state_dict().items()}, weights
    )
    identity = ImageEncoder.load(EncoderConfig(str(tmp_path / "tiny.json"), None, weights)).identity
    return checkpoint(tmp_path / "run", identity), weights


def rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_locdiffusion_from_photos_skips_a_bad_one(tiny, photos, tmp_path, capsys):
    run, weights = tiny
    out = tmp_path / "pred.csv"
    argv = ["predict", "--engine", "locdiff", "--images", str(photos), "--out", str(out)]
    argv += ["--checkpoint", str(run), "--encoder-weights", str(weights), "--steps", "2"]
    assert cli.main([*argv, "--samples", "4", "--device", "cpu"]) == 1  # one photo failed
    err = capsys.readouterr().err
    assert "zz-broken.jpg" in err
    got = rows(out)
    assert [Path(r["id"]).name for r in got] == ["DSCN0010.jpg", "DSCN0012.jpg", "DSCN0021.jpg"]
    assert {r["engine"] for r in got} == {"locdiff"}


def test_refusals_say_what_to_do(tiny, photos, tmp_path, capsys):
    run, weights = tiny
    base = ["predict", "--images", str(photos), "--out", str(tmp_path / "p.csv")]
    assert cli.main([*base, "--engine", "hybrid"]) == 2
    assert "needs a LocDiffusion checkpoint (--checkpoint RUN_DIR)" in capsys.readouterr().err
    hybrid = [*base, "--engine", "hybrid", "--checkpoint", str(run)]
    assert cli.main([*hybrid, "--encoder-weights", str(weights)]) == 2
    assert "LocDiff-H needs a LocDiffusion checkpoint trained on" in capsys.readouterr().err
    dataset = tmp_path / "unit.npz"  # unit rows only: no raw features for GeoCLIP
    save_embeddings(dataset, np.eye(2, 768, dtype=np.float32), [1, 2], [3, 4], ["a", "b"],
                    dict(GEOCLIP_BACKBONE))  # fmt: skip
    data = ["predict", "--engine", "geoclip", "--data", str(dataset), "--out", "x.csv"]
    assert cli.main(data) == 2
    assert "keeps unit-length embeddings only (no 'norm' array)" in capsys.readouterr().err
    other = tmp_path / "other.npz"
    save_embeddings(other, np.eye(2, 768, dtype=np.float32), [1, 2], [3, 4], norm=[1.0, 2.0])
    assert cli.main([*data[:4], str(other), *data[5:]]) == 2
    assert "--engine geoclip reads CLIP ViT-L-14 / openai" in capsys.readouterr().err
    assert cli.main([*base[:2], str(tmp_path / "nowhere"), *base[3:]]) == 2
    assert "nowhere: no such photo or folder" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_geoclip_and_hybrid_from_photos(vit_l14, geoclip_cache, photos, tmp_path):
    _, weights = vit_l14
    common = ["--images", str(photos), "--encoder-weights", str(weights)]
    common += ["--cache-dir", str(geoclip_cache), "--device", "cpu"]
    out = tmp_path / "geoclip.csv"
    assert cli.main(["predict", "--out", str(out), *common]) == 1  # default engine, no run
    got = rows(out)
    assert len(got) == 3 and {r["engine"] for r in got} == {"geoclip"}
    run = checkpoint(tmp_path / "run", dict(GEOCLIP_BACKBONE))
    out = tmp_path / "hybrid.csv"
    extra = ["--checkpoint", str(run), "--samples", "4", "--steps", "2"]
    assert cli.main(["predict", "--out", str(out), *common, *extra]) == 1  # default: hybrid
    assert {r["engine"] for r in rows(out)} <= {"hybrid", "locdiff"}


@pytest.mark.slow
def test_geoclip_from_a_dataset_equals_geoclip_from_the_photos(
    vit_l14, geoclip_cache, photos, tmp_path, capsys
):
    _, weights = vit_l14
    (photos / "zz-broken.jpg").unlink()
    dataset = tmp_path / "ds"
    embed = ["embed", "--photos", str(photos), "--out", str(dataset), "--model", "ViT-L-14"]
    embed += ["--pretrained", "openai", "--weights", str(weights), "--workers", "0"]
    assert cli.main([*embed, "--device", "cpu"]) == 0
    data = load_embeddings(dataset)
    assert data.norm is not None and data.norm.min() > 1.0  # raw ViT-L/14 features are long
    common = ["--engine", "geoclip", "--cache-dir", str(geoclip_cache), "--device", "cpu"]
    from_data = tmp_path / "data.csv"
    assert cli.main(["predict", "--data", str(dataset), "--out", str(from_data), *common]) == 0
    from_images = tmp_path / "images.csv"
    images = ["--images", str(photos), "--encoder-weights", str(weights)]
    assert cli.main(["predict", *images, "--out", str(from_images), *common]) == 0
    by_name = {Path(r["id"]).name: r for r in rows(from_images)}
    for r in rows(from_data):
        other = by_name[Path(r["id"]).name]
        assert (r["centre_lat"], r["centre_lon"]) == (other["centre_lat"], other["centre_lon"])
        assert r["engine"] == "geoclip"
