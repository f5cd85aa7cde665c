"""The image pipeline: photos in, the chosen engine's predictions out, errors as values."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from geoclip_helpers import cluster, made_up_head

from locdiff_core.checkpoint import CheckpointConfig, save_checkpoint
from locdiff_core.diffusion import DiffusionConfig
from locdiff_core.engines import Engine
from locdiff_core.image_encoder import EncoderConfig, ImageEncoder
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.photo.errors import PhotoError
from locdiff_core.pipeline import Pipeline, PipelineConfig
from locdiff_core.predictor import Predictor, PredictorConfig

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "exif-samples" / "jpg"
# a tiny open_clip ViT whose projected feature is 768-d, as CLIP ViT-L/14's
TINY_768 = {
    "embed_dim": 768,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}
FAST = PipelineConfig(locdiff=PredictorConfig(num_samples=4, num_steps=2), batch_size=3)


@pytest.fixture(scope="module")
def encoder_config(tmp_path_factory):
    import open_clip
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tiny768")
    (folder / "tiny768.json").write_text(json.dumps(TINY_768), encoding="utf-8")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.CLIP(**TINY_768)
    weights = folder / "tiny768.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    return EncoderConfig(str(folder / "tiny768.json"), None, weights, "cpu")


@pytest.fixture(scope="module")
def encoder(encoder_config):
    return ImageEncoder.load(encoder_config)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, encoder):
    torch.manual_seed(0)
    cfg = CSUNetConfig(degree=6, dim_cond=768, widths=(32,), dim_bottleneck=16, dropout=0.0)
    folder = tmp_path_factory.mktemp("run")
    config = CheckpointConfig(cfg, DiffusionConfig(num_steps=20), encoder=encoder.identity)
    save_checkpoint(folder, CSUNet(cfg), config)
    return folder


@pytest.fixture(scope="module")
def full(encoder, run_dir):
    """All three engines: the checkpoint's LocDiffusion and a made-up GeoCLIP gallery."""
    latlon = np.concatenate([cluster(48.86, 2.35, 20), cluster(35.68, 139.69, 20, seed=1)])
    head = made_up_head(latlon, list(range(40)))
    return Pipeline(encoder, predictor=Predictor.from_checkpoint(run_dir), geoclip=head)


@pytest.fixture
def photos(tmp_path):
    gps = sorted((SAMPLES / "gps").glob("DSCN00*.jpg"))[:4]
    paths = [shutil.copy(p, tmp_path / p.name) for p in gps]
    (tmp_path / "broken.jpg").write_text("not a photo")
    return [*paths[:2], tmp_path / "broken.jpg", *paths[2:]]


def test_every_engine_answers_and_a_bad_photo_fails_alone(full, photos):
    assert full.engines == (Engine.GEOCLIP, Engine.LOCDIFF, Engine.HYBRID)
    assert full.default_engine is Engine.HYBRID
    for engine in Engine:
        config = PipelineConfig(engine, FAST.locdiff, batch_size=3)
        seen: list[float] = []
        results = dict(
            full.predict_paths(photos, config, progress=lambda d, t, s=seen: s.append(d))
        )
        assert sorted(results) == [0, 1, 2, 3, 4]
        assert isinstance(results[2], PhotoError) and "broken.jpg" in str(results[2])
        assert {results[i].engine for i in (0, 1, 3, 4)} <= {engine, Engine.LOCDIFF}
        assert seen[-1] == 5 and seen == sorted(seen)


def test_each_photo_is_decoded_and_embedded_once(full, photos, monkeypatch):
    calls = []
    real = full.encoder.embed_paths

    def counting(paths, **kwargs):
        calls.append((list(paths), kwargs["normalize"]))
        return real(paths, **kwargs)

    monkeypatch.setattr(full.encoder, "embed_paths", counting)
    list(full.predict_paths(photos, PipelineConfig(Engine.HYBRID, FAST.locdiff, batch_size=3)))
    assert [p for batch, _ in calls for p in batch] == photos
    assert all(normalize is False for _, normalize in calls)


def test_locdiffusion_reads_the_unit_embedding(full, encoder, photos):
    raw = np.stack([v for _, v in encoder.embed_paths(photos[:2], normalize=False)])
    unit = np.stack([v for _, v in encoder.embed_paths(photos[:2])])
    config = PipelineConfig(Engine.LOCDIFF, FAST.locdiff)
    via_pipeline = full.predict_features(raw, config)
    direct = full.predictor.predict(unit, FAST.locdiff)
    for a, b in zip(via_pipeline, direct, strict=True):
        np.testing.assert_allclose(a.samples, b.samples, atol=1e-9)


def test_cancel_stops_between_batches(full, photos):
    asked = []

    def cancel():
        asked.append(1)
        return len(asked) > 3

    got = list(full.predict_paths(photos, FAST, cancel=cancel))
    assert len(got) < len(photos)


def test_load_refuses_what_cannot_work(run_dir, encoder_config):
    with pytest.raises(ValueError, match="needs a LocDiffusion checkpoint"):
        Pipeline.load(Engine.HYBRID)
    with pytest.raises(ValueError, match=r"LocDiff-H needs .*ViT-L-14 / openai.*--engine locdiff"):
        Pipeline.load(Engine.HYBRID, checkpoint=run_dir, encoder_weights=encoder_config.weights)
    only = Pipeline.load(checkpoint=run_dir, encoder_weights=encoder_config.weights, device="cpu")
    assert only.engines == (Engine.LOCDIFF,) and only.default_engine is Engine.LOCDIFF
    with pytest.raises(ValueError, match="engine geoclip needs GeoCLIP's head"):
        only.resolve(Engine.GEOCLIP)
