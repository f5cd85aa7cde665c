"""``locdiff embed`` by several processes (``torchrun``): each embeds its share into a part
folder, rank 0 merges them into one dataset and manifest, and an interruption of any process,
or of the merge, is finished by a rerun with any number of processes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from locdiff_core.image_encoder import ImageEncoder
from locdiff_core.photo.writing import BackupMode, WriteConfig, write_gps
from trainer import manifest
from trainer.data import load_embeddings
from trainer.embed import EmbedConfig, Share, build_dataset
from trainer.manifest import MANIFEST, RANKS, latest, read_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def photos(tmp_path):
    """Nine geotagged JPEGs, one without GPS and a text file posing as a photo."""
    root = tmp_path / "photos"
    (root / "b").mkdir(parents=True)
    config = WriteConfig(backup=BackupMode.NONE, journal_dir=tmp_path / "journal")
    rng = np.random.default_rng(4)
    for i in range(9):
        path = root / ("b" if i % 2 else "") / f"p{i}.jpg"
        pixels = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, quality=90)
        assert write_gps([path], -60.0 + 13 * i, -170.0 + 37 * i, config=config)[0].ok
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "no_gps.jpg")
    (root / "notes.jpg").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def encoder(tiny_encoder):
    return ImageEncoder.load(tiny_encoder)


def config(out: Path, photos: Path) -> EmbedConfig:
    return EmbedConfig(out=out, photos=photos, batch_size=1, shard_size=2)


def same_dataset(a: Path, b: Path) -> None:
    """Same outcomes per file, same rows per id (row order and shard names may differ)."""
    outcomes = {k: (e.outcome, e.reason) for k, e in latest(read_manifest(a)).items()}
    assert outcomes == {k: (e.outcome, e.reason) for k, e in latest(read_manifest(b)).items()}
    x, y = load_embeddings(a), load_embeddings(b)  # also refuses an id repeated in a merge
    ox, oy = np.argsort(x.ids), np.argsort(y.ids)
    assert x.ids[ox].tolist() == y.ids[oy].tolist()
    np.testing.assert_allclose(x.embedding[ox], y.embedding[oy], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x.lat[ox], y.lat[oy])
    np.testing.assert_allclose(x.norm[ox], y.norm[oy], rtol=1e-5)
    assert not (a / RANKS).exists()
    named = {e.shard for e in read_manifest(a) if e.shard}
    assert named == {p.name for p in a.glob("shard-*.npz")}


@pytest.fixture
def whole(tmp_path, photos, encoder):
    out = tmp_path / "whole"
    build_dataset(config(out, photos), encoder)
    return out


def test_a_rank_stopped_midway_is_finished_by_one_process(tmp_path, photos, encoder, whole):
    out = tmp_path / "ds"
    stop = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "embedding" and done >= 3:
            stop.append(True)

    # Rank 1 of 3 alone: what the other ranks' failure and torchrun's teardown leave.
    summary = build_dataset(
        config(out, photos),
        encoder,
        share=Share(1, 3),
        progress=progress,
        cancel=lambda: bool(stop),
    )
    assert summary.cancelled
    part = out / RANKS / "rank-001"
    assert sum(e.outcome == "embedded" for e in read_manifest(part)) == 3
    assert not (out / MANIFEST).exists()  # nothing merged: rank 0 never got there
    recorded = len(latest(read_manifest(part)))
    resumed = build_dataset(config(out, photos), encoder)
    assert resumed.skipped == recorded  # what the part records is not looked at again
    assert any("rank-001: merged 2 shard(s) (3 embedded)" in n for n in resumed.notes)
    same_dataset(out, whole)


def test_a_killed_rank_and_a_killed_merge_are_repaired(
    tmp_path, photos, encoder, whole, monkeypatch
):
    out = tmp_path / "ds"

    def kill(stage: str, done: int, total: int) -> None:
        if stage == "embedding" and done >= 2:
            raise KeyboardInterrupt  # between two rows of a shard: the second is lost

    with pytest.raises(KeyboardInterrupt):
        build_dataset(config(out, photos), encoder, share=Share(0, 2), progress=kill)
    build_dataset(config(out, photos), encoder, share=Share(1, 2))  # rank 1 ran to its end
    real_adopt, adopted = manifest.ShardedWriter.adopt, []

    def adopt_then_die(self, shard, lines):
        if len(adopted) == 3:
            raise KeyboardInterrupt  # the merge dies after three shards
        adopted.append(shard)
        return real_adopt(self, shard, lines)

    monkeypatch.setattr(manifest.ShardedWriter, "adopt", adopt_then_die)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(config(out, photos), encoder)
    monkeypatch.setattr(manifest.ShardedWriter, "adopt", real_adopt)
    build_dataset(config(out, photos), encoder)
    same_dataset(out, whole)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_build_one_dataset(tmp_path, photos, tiny_encoder, whole):
    out = tmp_path / "ds"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT)
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{_free_port()}",
        "--monitor-interval",
        "0.2",
        "-m",
        "trainer",
        "embed",
        "--photos",
        str(photos),
        "--out",
        str(out),
        "--model",
        tiny_encoder.model,
        "--weights",
        str(tiny_encoder.weights),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--batch-size",
        "1",
        "--shard-size",
        "2",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{out}: 9 embedded, 1 no_gps, 1 unreadable" in done.stdout
    assert "rank 1: " in done.stdout
    same_dataset(out, whole)
