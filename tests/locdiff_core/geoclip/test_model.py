"""Our GeoCLIP networks against the geoclip package's own modules, with its trained weights."""

import numpy as np
import pytest
import torch

from locdiff_core.geoclip import GeoCLIPFiles
from locdiff_core.geoclip.model import ImageHead, LocationEncoder, equal_earth


@pytest.fixture(scope="module")
def files():
    return GeoCLIPFiles.installed()


def test_location_features_equal_the_reference(files):
    reference = pytest.importorskip("geoclip.model.location_encoder")
    ours = LocationEncoder().eval()
    ours.load_state_dict(files.state_dict("location_encoder"), strict=True)
    ref = reference.LocationEncoder(from_pretrained=True).eval()
    points = torch.as_tensor(files.gallery_coordinates()[::97], dtype=torch.float32)
    points = torch.cat([points, torch.tensor([[90.0, 180.0], [-90.0, -180.0], [0.0, 0.0]])])
    with torch.inference_mode():
        np.testing.assert_allclose(
            equal_earth(points), reference.equal_earth_projection(points), rtol=0, atol=1e-6
        )
        got, want = ours(points), ref(points)
    assert torch.allclose(got, want, rtol=0, atol=1e-4 * float(want.abs().max()))


def test_image_head_loads_geoclips_state_dict(files):
    head = ImageHead()
    head.load_state_dict(files.state_dict("image_head"), strict=True)
    raw = torch.randn(4, 768)
    state = files.state_dict("image_head")
    expected = torch.relu(raw @ state["0.weight"].T + state["0.bias"]) @ state["2.weight"].T
    assert torch.allclose(head(raw), expected + state["2.bias"], atol=1e-5)
