"""From photos to a trained model, end to end, on the CPU.

A folder of small generated JPEGs whose GPS the test writes (plus one corrupted photo) becomes an
embedding dataset with ``locdiff embed`` (a tiny random-weight open_clip encoder); two processes
under ``torchrun --nproc-per-node 2`` (gloo) train a tiny model on it; the two ranks end with
identical parameters, equal within 1e-5 to one process trained on the same global batches; and
``locdiff eval`` scores the checkpoint from the images.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from locdiff_core.photo.writing import BackupMode, WriteConfig, write_gps
from trainer.cli import main
from trainer.manifest import latest, read_manifest

ROOT = Path(__file__).resolve().parents[2]
NUM_PHOTOS = 24
TINY = "--degree 4 --widths 32,16 --bottleneck 8 --anchors 64 --batch-size 8 --epochs 3 "
TINY += "--dropout 0 --lr 1e-3 --log-every 2 --checkpoint-every 4 --seed 5"


def _photo_folder(root: Path, journal: Path) -> dict[str, tuple[float, float]]:
    """``NUM_PHOTOS`` JPEGs whose colour follows their (written) position, and a geotagged one
    whose image data is cut short."""
    rng = np.random.default_rng(0)
    places = {}
    config = WriteConfig(backup=BackupMode.NONE, journal_dir=journal)
    for i in range(NUM_PHOTOS):
        lat, lon = float(rng.uniform(-60, 70)), float(rng.uniform(-180, 180))
        base = np.array([(lat + 90) / 180, (lon + 180) / 360, 0.5]) * 255
        pixels = np.clip(base + rng.normal(0, 20, (48, 64, 3)), 0, 255).astype(np.uint8)
        name = f"photo_{i:02d}.jpg"
        Image.fromarray(pixels).save(root / name, quality=90)
        assert write_gps([root / name], lat, lon, config=config)[0].ok
        places[name] = (lat, lon)
    Image.fromarray(pixels).resize((640, 480)).save(root / "broken.jpg", quality=90)
    assert write_gps([root / "broken.jpg"], 10.0, 20.0, config=config)[0].ok
    data = (root / "broken.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(data[: len(data) // 3])  # GPS intact, pixels cut short
    return places


def _params(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.slow
def test_photos_to_a_model_under_torchrun(tmp_path, tiny_encoder, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    places = _photo_folder(photos, tmp_path / "journal")
    dataset = tmp_path / "dataset"
    encoder = ["--model", tiny_encoder.model, "--weights", str(tiny_encoder.weights)]
    embed = ["embed", "--photos", str(photos), "--out", str(dataset), *encoder, "--device", "cpu"]
    assert main([*embed, "--batch-size", "8", "--shard-size", "10"]) == 0
    entries = latest(read_manifest(dataset))
    assert {k for k, e in entries.items() if e.outcome.value == "embedded"} == set(places)
    assert entries["broken.jpg"].outcome.value == "unreadable" and entries["broken.jpg"].reason

    # Two processes under torchrun (gloo), then one process with the same global batches.
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "trainer", "train", "--data", str(dataset), "--out", str(two), *TINY.split()]
    done = subprocess.run(
        [*cmd, "--dump-rank-params"], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    ranks = [_params(two / f"params.rank{r}.safetensors") for r in range(2)]
    assert _max_diff(ranks[0], ranks[1]) == 0.0
    one = tmp_path / "one"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--data", str(dataset), "--out", str(one), *TINY.split()]) == 0
    finally:
        torch.set_num_threads(before)
    single = _params(one / "checkpoint.safetensors")
    assert _max_diff(_params(two / "checkpoint.safetensors"), single) < 1e-5
    steps = [json.loads(x)["step"] for x in (two / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 3 * NUM_PHOTOS // 8  # three epochs of three global batches

    # The checkpoint carries the encoder: eval embeds the images itself.
    csv = tmp_path / "test.csv"
    rows = [f"{name},{lat},{lon}" for name, (lat, lon) in places.items()]
    csv.write_text("IMG_ID,LAT,LON\n" + "\n".join(rows) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(two), "--csv", str(csv), "--images", str(photos),
                 "--encoder-weights", str(tiny_encoder.weights), "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == NUM_PHOTOS and report["skipped"] == {}
    for guess in ("best", "centre"):
        assert report[guess]["count"] == NUM_PHOTOS
        assert 0.0 <= report[guess]["acc_2500km"] <= 100.0 and report[guess]["median_km"] > 0
