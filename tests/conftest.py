import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if hasattr(os, "geteuid") and os.geteuid() == 0:
    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


TINY_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """An ``EncoderConfig`` for a tiny open_clip ViT (32 px input, 2 layers, D = 32): its model
    config JSON and a random full-CLIP weights file (safetensors) in a temporary folder."""
    import json

    import open_clip
    from safetensors.torch import save_file

    from locdiff_core.image_encoder import EncoderConfig

    folder = tmp_path_factory.mktemp("tiny_encoder")
    config = folder / "tiny-vit.json"
    config.write_text(json.dumps(TINY_VIT), encoding="utf-8")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.CLIP(**TINY_VIT)
    weights = folder / "tiny-vit.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    return EncoderConfig(model=str(config), pretrained=None, weights=weights, device="cpu")
