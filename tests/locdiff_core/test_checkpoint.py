"""Checkpoints round-trip exactly, and every kind of bad file is refused with its reason: a
config field of the wrong type or out of range (named, never a traceback), a tensor changed
since it was saved (sha256), NaN values (damage, not a learning-rate problem)."""

import json
import struct
import warnings

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
    with pytest.raises(ValueError, match=r"diffusion\.schedule must be one of .*'quadratic'"):
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


def _rewrite(path, model, raw) -> None:
    """Write the model's tensors with the config object (or text) ``raw``, as a hand-edited or
    foreign file would be: without a recorded sha256."""
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    text = raw if isinstance(raw, str) else json.dumps(raw)
    save_file(tensors, path, metadata={"locdiff_config": text})


def _set(*keys_and_value):
    """A change to the config JSON: ``_set("model", "degree", 12.5)``; ``...`` deletes."""
    *keys, value = keys_and_value

    def change(raw):
        node = raw
        for key in keys[:-1]:
            node = node[key]
        if value is ...:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        return raw

    return change


BAD_CONFIGS = {
    "config is a list": (lambda raw: [1, 2], "locdiff_config must be a JSON object"),
    "float degree": (_set("model", "degree", 12.5), r"model\.degree must be an integer in 0\.\."),
    "string w0": (_set("model", "w0", "1.0"), r"model\.w0 must be a number"),
    "string format_version": (_set("format_version", "1"), r"format_version must be an integer"),
    "bool format_version": (_set("format_version", True), r"format_version must be an integer"),
    "format_version 0": (_set("format_version", 0), r"format_version must be an integer in 1"),
    "string widths": (_set("model", "widths", "32"), r"model\.widths must be a list"),
    "bool in widths": (_set("model", "widths", [32, True]), r"model\.widths must be a list"),
    "string dropout": (_set("model", "dropout", "0.3"), r"model\.dropout must be a number"),
    "int null flag": (_set("model", "learn_null_condition", 1), r"learn_null_condition must be"),
    "model is a list": (_set("model", []), r"locdiff_config\.model must be a JSON object"),
    "diffusion is null": (_set("diffusion", None), r"diffusion must be a JSON object"),
    "missing dim_cond": (_set("model", "dim_cond", ...), r"model\.dim_cond is missing"),
    "unknown model field": (_set("model", "depth", 3), r"model has unknown fields \['depth'\]"),
    "unknown top field": (_set("extra", {}), r"locdiff_config has unknown fields \['extra'\]"),
    "huge degree": (_set("model", "degree", 10**9), r"model\.degree must be an integer in"),
    "huge width": (_set("model", "widths", [10**9]), r"model\.widths must be a list"),
    "deep widths": (_set("model", "widths", [8] * 10_000), r"model\.widths must be a list of"),
    "huge num_steps": (_set("diffusion", "num_steps", 10**12), r"diffusion\.num_steps must be"),
    "negative anchors": (_set("diffusion", "num_anchors", -1), r"diffusion\.num_anchors must"),
    "NaN latent_scale": (_set("diffusion", "latent_scale", float("nan")), r"latent_scale must"),
    "encoder is a string": (_set("encoder", "ViT"), r"locdiff_config\.encoder must be a JSON"),
    "training is a list": (_set("training", [1]), r"locdiff_config\.training must be a JSON"),
    "eps with kl loss": (
        lambda raw: {
            **raw,
            "diffusion": {**raw["diffusion"], "prediction": "eps", "loss": "shdd_kl"},
        },
        r"locdiff_config\.diffusion: noise prediction \(eps\) trains with the MSE loss",
    ),
}


@pytest.mark.parametrize("change, message", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_a_bad_config_field_is_named_in_a_value_error(tmp_path, change, message):
    model, config = small()
    path = tmp_path / "model.safetensors"
    _rewrite(path, model, change(json.loads(config.to_json())))
    for read in (read_config, load_checkpoint):  # ValueError only: anything else fails here
        with pytest.raises(ValueError, match=message) as refused:
            read(path)
        assert str(refused.value).startswith(f"{path}: ")


def test_config_text_that_is_not_json_is_refused(tmp_path):
    model, _ = small()
    path = tmp_path / "model.safetensors"
    for text in ("{not json", "[" * 100_000):
        _rewrite(path, model, text)
        with pytest.raises(ValueError, match="not valid JSON"):
            read_config(path)


def test_missing_fields_with_defaults_take_them(tmp_path):
    model, config = small()
    path = tmp_path / "model.safetensors"
    raw = json.loads(config.to_json())
    for part, name in (("model", "w0"), ("diffusion", "cond_drop_prob"), ("training", None)):
        if name is None:
            del raw[part]
        else:
            del raw[part][name]
    _rewrite(path, model, raw)
    loaded = read_config(path)
    assert loaded.model.w0 == 1.0 and loaded.diffusion.cond_drop_prob == 0.0
    assert loaded.training == {} and loaded.model == config.model


def test_a_large_config_is_checked_against_the_file_before_allocating(tmp_path):
    """The largest config the bounds allow would need tens of GB: the file's tensors are
    compared with the shapes first, so a small file with such a config is refused at once."""
    model, config = small()
    path = tmp_path / "model.safetensors"
    raw = json.loads(config.to_json())
    raw["model"].update(degree=200, dim_cond=8192, widths=[8192] * 16, dim_time=8192)
    _rewrite(path, model, raw)
    with pytest.raises(ValueError, match=r"weights do not match the config: .*has shape"):
        load_checkpoint(path)


def _flip_tensor_bit(path) -> None:
    """Flip the lowest bit of one byte in the middle of the tensor data (after the header)."""
    data = bytearray(path.read_bytes())
    (header_len,) = struct.unpack("<Q", data[:8])
    start = 8 + header_len
    data[start + (len(data) - start) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_bit_flip_in_the_tensors_is_refused_as_damage(tmp_path):
    model, config = small()
    path = save_checkpoint(tmp_path / "run", model, config)
    intact = path.read_bytes()
    _flip_tensor_bit(path)
    with pytest.raises(ValueError) as refused:
        load_checkpoint(path)
    assert str(refused.value) == (
        f"{path} is damaged: its sha256 does not match the one recorded at save time; "
        "re-copy it or retrain"
    )
    path.write_bytes(intact)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checked file loads without the "unchecked" note
        loaded, _ = load_checkpoint(path)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_an_edited_config_is_refused_as_damage(tmp_path):
    """The sha256 covers the config text too: a changed dropout would otherwise pass."""
    model, config = small()
    path = save_checkpoint(tmp_path / "c.safetensors", model, config)
    data = path.read_bytes()
    assert data.count(b'\\"dropout\\": 0.3') == 1
    path.write_bytes(data.replace(b'\\"dropout\\": 0.3', b'\\"dropout\\": 0.1'))
    with pytest.raises(ValueError, match="is damaged: its sha256 does not match"):
        load_checkpoint(path)


def test_a_file_without_a_recorded_sha256_loads_with_a_warning(tmp_path):
    model, config = small()
    path = tmp_path / "old.safetensors"
    _rewrite(path, model, config.to_json())
    with pytest.warns(UserWarning, match=r"old\.safetensors records no sha256.*loads unchecked"):
        loaded, cfg = load_checkpoint(path)
    assert cfg == config and torch.equal(loaded.out.bias, model.out.bias)


@pytest.mark.parametrize("bad, word", [(float("nan"), "NaN"), (float("inf"), "infinite")])
def test_nan_in_saved_weights_is_named_as_damage(tmp_path, bad, word):
    model, config = small()
    with torch.no_grad():
        model.out.bias[3] = bad
    path = save_checkpoint(tmp_path / "c.safetensors", model, config)  # sha256 matches
    with pytest.raises(ValueError) as refused:
        load_checkpoint(path)
    assert str(refused.value) == (
        f"{path} holds {word} values in tensor 'out.bias': the file is damaged (or was saved "
        "after training diverged); re-copy it or retrain"
    )


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"degree": 10**6}, r"degree must be an integer in 0\.\.200, got 1000000"),
        ({"widths": (10**9,)}, r"widths must be a list of 1\.\.16 integers"),
        ({"widths": [32]}, r"widths must be a tuple"),
        ({"dim_cond": True}, r"dim_cond must be an integer"),
    ],
)
def test_a_config_built_in_code_is_checked_before_the_network_is(fields, message):
    """The same bounds hold for a config typed on a command line: nothing is allocated."""
    with pytest.raises(ValueError, match=message):
        CSUNet(CSUNetConfig(**{"degree": 5, "dim_cond": 12, **fields}))
    with pytest.raises(ValueError, match=r"num_steps must be an integer in 1\.\.10000"):
        DiffusionConfig(num_steps=10**9).validate()


def test_a_broken_model_file_says_what_is_wrong(tmp_path):
    model, config = small()
    path = save_checkpoint(tmp_path / "model.safetensors", model, config)
    data = path.read_bytes()
    cases = {
        b"": "the model file is empty (0 bytes); download or copy it again",
        data[:40]: "the model file is cut short (truncated): the download or copy did not "
        "finish; download or copy it again",
        data[: len(data) - 100]: "the model file is cut short (truncated): the download or copy "
        "did not finish; download or copy it again",
        b"these are my notes\n" * 20: "not a readable safetensors file (the start of the file "
        "is text)",
    }
    for content, message in cases.items():
        path.write_bytes(content)
        with pytest.raises(ValueError) as caught:
            load_checkpoint(path)
        assert str(caught.value) == f"{path}: {message}"
        assert caught.value.__cause__ is not None
