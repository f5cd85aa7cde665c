"""Checkpoints round-trip exactly, and every kind of bad file is refused with its reason."""

import json

import pytest
import torch
from safetensors.torch import save_file

from locdiff_core.checkpoint import (
    CheckpointConfig,
    check_encoder,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from locdiff_core.diffusion import DiffusionConfig, LossKind
from locdiff_core.nn import CSUNet, CSUNetConfig

ENCODER = {"name": "ViT-B-32", "pretrained": "openai", "dim": 12}


def small():
    cfg = CSUNetConfig(degree=5, dim_cond=12, widths=(32,), dim_bottleneck=8, dim_time=16)
    config = CheckpointConfig(cfg, DiffusionConfig(loss=LossKind.MSE), ENCODER, {"step": 7})
    return CSUNet(cfg).eval(), config


def test_round_trip_restores_weights_and_config(tmp_path):
    model, config = small()
    path = save_checkpoint(tmp_path / "run", model, config)
    assert path.name == "checkpoint.safetensors"
    loaded, cfg = load_checkpoint(tmp_path / "run")
    assert cfg == config
    x, t, c = torch.randn(3, 36), torch.tensor([1, 50, 99]), torch.randn(3, 12)
    assert torch.equal(loaded(x, t, c), model(x, t, c))
    assert not loaded.training
    assert [p.name for p in tmp_path.joinpath("run").iterdir()] == ["checkpoint.safetensors"]


def test_mismatched_weights_are_named(tmp_path):
    model, config = small()
    path = save_checkpoint(tmp_path / "ckpt.safetensors", model, config)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    wider = json.loads(config.to_json())
    wider["model"]["widths"] = [64]
    save_file(tensors, path, metadata={"locdiff_config": json.dumps(wider)})
    with pytest.raises(ValueError, match=r"down\.0\.proj_x\.weight.*has shape \(32, 36\)"):
        load_checkpoint(path)
    del tensors["out.bias"]
    save_file(tensors, path, metadata={"locdiff_config": config.to_json()})
    with pytest.raises(ValueError, match=r"missing tensor 'out\.bias'"):
        load_checkpoint(path)


def test_corrupted_and_foreign_files_are_refused(tmp_path):
    model, config = small()
    path = save_checkpoint(tmp_path / "c.safetensors", model, config)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"c\.safetensors"):
        load_checkpoint(path)
    path.write_bytes(b"\x80\x04pickle? no")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_config(path)
    save_file({"w": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="without a LocDiff config"):
        read_config(path)
    with pytest.raises(ValueError, match="no checkpoint there"):
        read_config(tmp_path / "missing")


def test_newer_format_and_bad_config_are_explained(tmp_path):
    model, config = small()
    path = save_checkpoint(tmp_path / "c.safetensors", model, config)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    raw = json.loads(config.to_json())
    raw["format_version"] = 99
    save_file(tensors, path, metadata={"locdiff_config": json.dumps(raw)})
    with pytest.raises(ValueError, match="newer than this program reads"):
        read_config(path)
    raw["format_version"] = 1
    raw["diffusion"]["schedule"] = "quadratic"
    save_file(tensors, path, metadata={"locdiff_config": json.dumps(raw)})
    with pytest.raises(ValueError, match=r"invalid checkpoint config.*quadratic"):
        read_config(path)


def test_embeddings_from_another_encoder_are_refused():
    check_encoder(ENCODER, dict(ENCODER), "test.npz")
    check_encoder(ENCODER, None, "test.npz")  # unknown identity: nothing to compare
    with pytest.raises(
        ValueError, match=r"test\.npz was embedded with .*ViT-L-14.*embed the photos"
    ):
        check_encoder(ENCODER, {**ENCODER, "name": "ViT-L-14"}, "test.npz")
    with pytest.raises(ValueError) as refused:  # braces in a path are printed, not formatted
        check_encoder(ENCODER, {**ENCODER, "name": "ViT-L-14"}, "/data/run{2}/emb.npz")
    assert str(refused.value).startswith("/data/run{2}/emb.npz was embedded with")
