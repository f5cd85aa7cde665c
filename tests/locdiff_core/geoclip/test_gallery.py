"""The encoded gallery is computed once, cached by the files' digest, and recomputed when bad."""

import numpy as np
import pytest
import torch

from locdiff_core.diffusion import CancelledError
from locdiff_core.geoclip import gallery as gallery_module
from locdiff_core.geoclip.gallery import cache_path, encode_gallery, load_or_encode
from locdiff_core.geoclip.model import LocationEncoder


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    return LocationEncoder().eval()


POINTS = np.array([[48.86, 2.35], [35.68, 139.69], [-33.87, 151.21], [0.0, 0.0]])


def test_features_are_cached_and_reused(encoder, tmp_path, monkeypatch):
    first = load_or_encode(encoder, POINTS, "k" * 64, cache_dir=tmp_path)
    path = cache_path("k" * 64, tmp_path)
    assert path.is_file()
    norms = first.features.norm(dim=1)
    assert torch.allclose(norms, torch.ones(4), atol=1e-6)

    def no_encoding(*_a, **_k):
        raise AssertionError("the gallery was encoded again")

    monkeypatch.setattr(gallery_module, "encode_gallery", no_encoding)
    again = load_or_encode(encoder, POINTS, "k" * 64, cache_dir=tmp_path)
    assert torch.equal(again.features, first.features)


def test_a_damaged_or_foreign_cache_is_encoded_again(encoder, tmp_path):
    path = cache_path("d" * 64, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not numpy")
    got = load_or_encode(encoder, POINTS, "d" * 64, cache_dir=tmp_path)
    assert got.features.shape == (4, 512)
    np.save(path, np.ones((3, 512), np.float32))  # another gallery's size
    got = load_or_encode(encoder, POINTS, "d" * 64, cache_dir=tmp_path)
    assert got.features.shape == (4, 512)
    assert np.load(path).shape == (4, 512)  # and the cache is right again


def test_encoding_reports_progress_and_cancels(encoder):
    seen = []
    encode_gallery(encoder, POINTS, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (4, 4)
    with pytest.raises(CancelledError):
        encode_gallery(encoder, POINTS, cancel=lambda: True)
