"""Our GeoCLIP engine equals GeoCLIP's own reference code (the ``geoclip`` package: Hugging
Face's ``CLIPModel``, its MLP, its location encoder and gallery) with the same random ViT-L/14
backbone weights mapped across, on real photos."""

import gc
from pathlib import Path

import numpy as np
import pytest
import torch
from geoclip_reference import reference_geoclip, reference_predict

from locdiff_core.geoclip import GeoCLIPHead
from locdiff_core.image_encoder import EncoderConfig, ImageEncoder

pytest.importorskip("transformers")
pytest.importorskip("geoclip")
GPS = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "exif-samples" / "jpg" / "gps"
PHOTOS = [GPS / "DSCN0010.jpg", GPS / "DSCN0021.jpg", GPS / "DSCN0040.jpg"]


@pytest.fixture(scope="module")
def both(vit_l14, geoclip_cache):
    """The reference's top 10 of every photo, our encoder (loaded from the weights file, as a
    user's would be) and our head."""
    tower, weights = vit_l14
    model = reference_geoclip(tower.state_dict())
    reference = reference_predict(model, PHOTOS, top_k=10)
    from geoclip.model.image_encoder import _extract_image_features

    with torch.inference_mode():  # the harness's own check: HF's CLIP is our tower
        hf = _extract_image_features(
            model.image_encoder.CLIP.get_image_features(pixel_values=reference.pixels)
        )
    del model
    gc.collect()
    encoder = ImageEncoder.load(EncoderConfig("ViT-L-14", "openai", weights, "cpu"))
    head = GeoCLIPHead.load(cache_dir=geoclip_cache)
    return reference, hf, encoder, head


@pytest.mark.slow
def test_features_and_top10_equal_the_reference_on_its_pixels(both):
    reference, hf, encoder, head = both
    raw = torch.from_numpy(encoder.embed_batch(reference.pixels, normalize=False))
    assert (raw - hf).abs().max() < 1e-4
    assert (raw - reference.raw_feature).abs().max() < 1e-4
    with torch.inference_mode():
        ours = head.image_head(raw)
    assert ours.shape == (3, 512)
    assert (ours - reference.feature).abs().max() < 1e-4
    probs = torch.softmax(head.logits(raw).double(), dim=1)
    top = torch.topk(probs, 10, dim=1)
    assert torch.equal(top.indices, reference.top_indices)  # the same points, in the same order
    assert (top.values - reference.top_probs.double()).abs().max() < 1e-4
    # and the engine's answer is the reference's top point
    for pred, gps in zip(head.predict(raw), reference.top_gps, strict=True):
        assert pred.centre == pytest.approx(tuple(gps[0].tolist()), abs=1e-5)


@pytest.mark.slow
def test_from_the_files_our_preprocessing_gives_the_same_answer(both):
    """Our pipeline decodes and preprocesses the photo itself (open_clip's PIL transform; the
    reference uses transformers' torchvision one, which differs by one 8-bit level in about
    0.3% of the values): the reference's top point is still our top point, the top 10 agree in
    all but the order of near ties."""
    reference, _, encoder, head = both
    raw = np.stack([v for _, v in encoder.embed_paths(PHOTOS, normalize=False)])
    with torch.no_grad():
        pixels = torch.stack(
            [encoder.pixels(__import__("PIL.Image").Image.open(p)) for p in PHOTOS]
        )
    assert (pixels - reference.pixels).abs().max() < 0.016  # at most one level of 255
    probs = torch.softmax(head.logits(raw).double(), dim=1)
    top = torch.topk(probs, 10, dim=1).indices
    for ours, theirs in zip(top.tolist(), reference.top_indices.tolist(), strict=True):
        assert ours[0] == theirs[0]
        assert len(set(ours) & set(theirs)) >= 9
