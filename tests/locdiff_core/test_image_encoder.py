"""The image encoder on a tiny open_clip ViT with random weights: the real code path (config,
weights file, image tower, preprocessing, batching, DataLoader workers), no download."""

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image
from safetensors.torch import save_file

from locdiff_core.encoder_identity import describe_encoder, encoder_mismatch
from locdiff_core.image_encoder import (
    EncoderConfig,
    ImageEncoder,
    WeightsNotFoundError,
    _architecture,
    find_weights,
)
from locdiff_core.photo.errors import PhotoError, PhotoErrorKind

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "exif-samples" / "jpg"


@pytest.fixture(scope="module")
def encoder(tiny_encoder):
    return ImageEncoder.load(tiny_encoder)


def scene(width: int = 80, height: int = 60, seed: int = 0) -> Image.Image:
    """A structured, asymmetric picture (gradients, a bright block near one corner)."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    img = np.stack([255 * x / width, 255 * y / height, 128 + 60 * np.sin(x / 5.0)], -1)
    img[5 : height // 3, 5 : width // 4] = (250, 20, 20)
    img += rng.normal(0, 8, img.shape)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def test_loading_names_the_encoder_and_its_weights(tiny_encoder, encoder):
    assert encoder.dim == 32
    identity = json.loads(json.dumps(encoder.identity))  # JSON-able as it stands
    assert identity == encoder.identity
    assert identity["name"] == "tiny-vit" and identity["pretrained"] is None
    assert identity["config"]["vision_cfg"]["patch_size"] == 8
    weights = tiny_encoder.weights.read_bytes()
    assert identity["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert "custom model tiny-vit" in describe_encoder(identity)


def test_embeddings_are_unit_float32_and_match_open_clip(tiny_encoder, encoder):
    images = [scene(seed=i) for i in range(5)]
    emb = encoder.embed_images(images)
    assert emb.shape == (5, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    # the same numbers as open_clip's whole CLIP model with its own inference transform
    model = open_clip.CLIP(**json.loads(Path(tiny_encoder.model).read_text()))
    open_clip.load_checkpoint(model, str(tiny_encoder.weights))
    cfg = PreprocessCfg(size=model.visual.image_size)  # open_clip's defaults otherwise
    transform = image_transform_v2(cfg, is_train=False)
    with torch.inference_mode():
        ref = model.eval().encode_image(torch.stack([transform(im) for im in images]))
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    np.testing.assert_allclose(emb, ref, atol=1e-6)


def test_batching_matches_one_by_one(tmp_path, encoder):
    images = [scene(70 + 3 * i, 50 + 2 * i, seed=i) for i in range(7)]
    together = encoder.embed_images(images)
    alone = np.concatenate([encoder.embed_images([im]) for im in images])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        im.save(paths[-1])
    for batch_size in (1, 3):
        got = dict(encoder.embed_paths(paths, batch_size=batch_size))
        np.testing.assert_allclose(np.stack([got[i] for i in range(7)]), alone, atol=1e-5)


def test_exif_orientation_is_honoured(tmp_path, encoder):
    upright = scene(80, 60)
    upright.save(tmp_path / "upright.png")
    # stored turned a quarter (as a camera held sideways does), tagged "rotate 90 CW to view"
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "tagged.png", exif=exif)
    stored.save(tmp_path / "untagged.png")
    paths = [tmp_path / n for n in ("upright.png", "tagged.png", "untagged.png")]
    emb = np.stack([e for _, e in encoder.embed_paths(paths)])
    np.testing.assert_allclose(emb[1], emb[0], atol=1e-5)  # the rotated twin embeds alike
    assert np.abs(emb[2] - emb[0]).max() > 1e-3  # and it would not without the tag
    with Image.open(paths[1]) as tagged:  # PIL images are turned upright too
        np.testing.assert_allclose(encoder.embed_images([tagged])[0], emb[0], atol=1e-5)


def test_rotated_jpeg_embeds_like_its_upright_twin(tmp_path, encoder):
    upright = scene(400, 300)
    upright.save(tmp_path / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned clockwise; "rotate 270 CW to view"
    upright.transpose(Image.Transpose.ROTATE_270).save(
        tmp_path / "tagged.jpg", quality=95, exif=exif
    )
    upright.transpose(Image.Transpose.ROTATE_270).save(tmp_path / "untagged.jpg", quality=95)
    names = ("upright.jpg", "tagged.jpg", "untagged.jpg")
    emb = np.stack([e for _, e in encoder.embed_paths([tmp_path / n for n in names])])
    twin, stranger = np.linalg.norm(emb[1] - emb[0]), np.linalg.norm(emb[2] - emb[0])
    assert twin < 0.2 * stranger, (twin, stranger)


def test_bad_files_are_reported_in_place_and_the_batch_goes_on(tmp_path, encoder):
    good = tmp_path / "good.jpg"
    scene().save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:200])
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    paths = [good, broken, tmp_path / "gone.jpg", text, good]
    for workers in (0, 1):  # in this process, and in a DataLoader worker process
        out = list(encoder.embed_paths(paths, batch_size=2, num_workers=workers))
        assert [i for i, _ in out] == [0, 1, 2, 3, 4]
        kinds = [r.kind if isinstance(r, PhotoError) else None for _, r in out]
        assert kinds[0] is None and kinds[4] is None
        assert kinds[2] is PhotoErrorKind.NOT_FOUND
        assert kinds[1] is not None and kinds[3] is PhotoErrorKind.NOT_AN_IMAGE
        assert out[1][1].path == broken and "broken.jpg" in str(out[1][1])
        np.testing.assert_allclose(out[0][1], out[4][1])


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared test photos not found")
def test_real_photos_embed_or_fail_cleanly(encoder):
    paths = sorted(SAMPLES.rglob("*.jpg"))[:40]
    results = dict(encoder.embed_paths(paths, batch_size=8))
    assert len(results) == len(paths)
    embedded = [r for r in results.values() if not isinstance(r, PhotoError)]
    assert len(embedded) > len(paths) // 2
    assert all(np.isfinite(e).all() and abs(np.linalg.norm(e) - 1) < 1e-5 for e in embedded)


def test_progress_and_cancel_between_batches(tmp_path, encoder):
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.png")
        scene(seed=i).save(paths[-1])
    seen = []
    out = list(encoder.embed_paths(paths, batch_size=2, progress=lambda d, t: seen.append((d, t))))
    assert len(out) == 6 and seen == [(0, 6), (2, 6), (4, 6), (6, 6)]
    stop = []
    got = []
    for i, _ in encoder.embed_paths(paths, batch_size=2, cancel=lambda: bool(stop)):
        got.append(i)
        stop.append(True)
    assert got == [0, 1]


def test_rebuilt_from_a_checkpoint_identity(tmp_path, tiny_encoder, encoder):
    identity = json.loads(json.dumps(encoder.identity))  # as a checkpoint stores it
    again = ImageEncoder.for_checkpoint(identity, weights=tiny_encoder.weights, device="cpu")
    images = [scene(seed=3)]
    np.testing.assert_array_equal(again.embed_images(images), encoder.embed_images(images))
    with pytest.raises(WeightsNotFoundError, match=r"--encoder-weights"):
        ImageEncoder.for_checkpoint(identity, device="cpu")
    other = tmp_path / "other.safetensors"
    state = {k: v + 0.01 for k, v in encoder.tower.state_dict().items()}
    save_file({f"visual.{k}": v.contiguous() for k, v in state.items()}, other)
    with pytest.raises(ValueError, match=r"another weights file"):
        ImageEncoder.for_checkpoint(identity, weights=other, device="cpu")


def test_identities_compare_by_architecture_and_weights():
    tag = {"name": "ViT-L-14", "pretrained": "openai", "dim": 768}
    assert encoder_mismatch(tag, dict(tag)) is None
    assert encoder_mismatch(tag, {**tag, "pretrained": "laion2b_s32b_b82k"}) == (
        "other pretrained weights"
    )
    assert encoder_mismatch(tag, {**tag, "name": "ViT-B-32", "dim": 512}) == "another architecture"
    local = {"name": "ViT-B-32", "pretrained": None, "dim": 512, "weights_sha256": "a" * 64}
    assert encoder_mismatch(local, {**local, "weights_sha256": "b" * 64}) == "another weights file"
    custom = {**local, "config": {"embed_dim": 512}, "preprocess": {"size": 224}}
    assert encoder_mismatch(custom, {**custom, "config": {"embed_dim": 512, "x": 1}}) == (
        "another architecture config"
    )
    assert describe_encoder(tag) == "ViT-L-14 / openai (dim 768)"


def test_openai_tags_build_quickgelu_towers():
    # OpenAI's CLIP was trained with QuickGELU; open_clip's ViT-L-14 config alone says GELU
    assert _architecture("ViT-L-14", "openai").quick_gelu
    assert not _architecture("ViT-L-14", "laion2b_s32b_b82k").quick_gelu


def test_bad_configs_say_how_to_fix_them(tmp_path):
    with pytest.raises(ValueError, match=r"did you mean ViT-B-32"):
        ImageEncoder.load(EncoderConfig(model="ViT-B-23"))
    with pytest.raises(ValueError, match=r"no pretrained tag 'nope'.*openai"):
        ImageEncoder.load(EncoderConfig(model="ViT-B-32", pretrained="nope"))
    with pytest.raises(ValueError, match=r"pretrained tag .* or a weights file"):
        EncoderConfig(pretrained=None).validate()
    with pytest.raises(ValueError, match=r"unknown device"):
        EncoderConfig(device="gpu").validate()
    bad = tmp_path / "bad.json"
    bad.write_text('{"embed_dim": 8}')
    with pytest.raises(ValueError, match=r"needs 'embed_dim' and 'vision_cfg'"):
        ImageEncoder.load(EncoderConfig(model=str(bad), pretrained=None, weights=bad))


def test_weights_of_another_model_are_refused(tmp_path, tiny_encoder):
    cfg = json.loads(Path(tiny_encoder.model).read_text())
    cfg["vision_cfg"]["width"] = 64
    wide = tmp_path / "wide.json"
    wide.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"do not fit wide"):
        ImageEncoder.load(EncoderConfig(str(wide), None, tiny_encoder.weights, "cpu"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"junk.safetensors: cannot read weights"):
        ImageEncoder.load(EncoderConfig(tiny_encoder.model, None, junk, "cpu"))


def test_missing_weights_name_the_model_the_places_and_the_command(tmp_path):
    config = EncoderConfig(model="ViT-B-32", pretrained="openai", cache_dir=tmp_path)
    with pytest.raises(WeightsNotFoundError) as info:
        ImageEncoder.load(config)
    msg = str(info.value)
    assert "ViT-B-32" in msg and "'openai'" in msg
    assert str(tmp_path / "timm" / "vit_base_patch32_clip_224.openai") in msg
    assert "Hugging Face cache" in msg and "ViT-B-32.pt" in msg
    assert "locdiff download-encoder --model ViT-B-32 --pretrained openai --cache-dir" in msg
    with pytest.raises(WeightsNotFoundError, match=r"nowhere.safetensors: weights file"):
        find_weights(EncoderConfig("ViT-B-32", None, tmp_path / "nowhere.safetensors"))


def test_weights_in_the_hugging_face_cache_are_found(tmp_path):
    repo = tmp_path / "models--timm--vit_base_patch32_clip_224.openai"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    config = EncoderConfig(model="ViT-B-32", pretrained="openai", cache_dir=tmp_path)
    assert find_weights(config) == snapshot / "open_clip_model.safetensors"
    ours = tmp_path / "timm" / "vit_base_patch32_clip_224.openai" / "open_clip_pytorch_model.bin"
    ours.parent.mkdir(parents=True)
    shutil.copyfile(snapshot / "open_clip_model.safetensors", ours)
    assert find_weights(config) == ours  # LocDiff's own download folder comes first


@pytest.mark.gpu
def test_cuda_embeddings_match_the_cpu(tiny_encoder, encoder):
    gpu = ImageEncoder.load(dataclasses.replace(tiny_encoder, device="cuda"))
    assert gpu.device.type == "cuda"
    images = [scene(seed=i) for i in range(4)]
    np.testing.assert_allclose(gpu.embed_images(images), encoder.embed_images(images), atol=1e-4)


@pytest.mark.gpu
def test_cuda_half_precision_embeddings_point_where_the_cpu_ones_do(
    tiny_encoder, encoder, tmp_path
):
    """``embed_paths`` on CUDA runs the tower in float16: each unit row within a cosine of
    0.999 of the float32 CPU row (float16 keeps about three significant digits)."""
    gpu = ImageEncoder.load(dataclasses.replace(tiny_encoder, device="cuda"))
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.jpg")
        scene(seed=i).save(paths[-1], quality=90)
    half = np.stack([row for _, row in gpu.embed_paths(paths, batch_size=4)])
    full = np.stack([row for _, row in encoder.embed_paths(paths, batch_size=4)])
    assert (np.sum(half * full, axis=1) > 0.999).all()
