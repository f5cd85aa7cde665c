"""The first run (offscreen): with no model at all the panel offers *Get the pretrained model*,
which asks first, downloads CLIP ViT-L/14's weights from the Hugging Face-like server on
127.0.0.1 (``HF_ENDPOINT``) with progress, can be cancelled keeping its part, resumes it on the
next click (a Range request), and then predicts with GeoCLIP. A failed download says how to
bring the file by hand.

The weights are a few made-up megabytes (the download checks their size and sha256, not what
they are); the pipeline factory only checks that the file is in place, then predicts with the
made-up GeoCLIP head (app_helpers)."""

import random

import pytest
from app_helpers import (
    Pixel768Embedder,
    add_photos,
    backbone_on_disk,
    pipeline_factory,
    predict_and_wait,
    wait_loaded,
    wait_model,
)

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from app.model.model_info import BACKBONE, BACKBONE_REPO, megabytes  # noqa: E402
from app.model.settings import Settings  # noqa: E402

FILE = "open_clip_model.safetensors"
PAYLOAD = random.Random(0).randbytes(4 * (1 << 20) + 12_345)  # five 1 MiB reads
HOLD = 1_500_000  # bytes sent before the server waits until the test has cancelled

needs_backbone = pipeline_factory(Pixel768Embedder, geoclip=True, backbone_file=True)


@pytest.fixture
def first_run(hub, monkeypatch):
    """The Hugging Face-like server (``hub``, tests/conftest.py) behind ``HF_ENDPOINT``."""
    if backbone_on_disk():
        pytest.skip("CLIP ViT-L/14's weights are on this machine: it is not a first run")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    return hub


def weights_path(tmp_path):
    return tmp_path / "cache" / BACKBONE_REPO / FILE  # LOCDIFF_CACHE_DIR (conftest)


def test_get_the_pretrained_model_asks_downloads_resumes_and_predicts(
    qtbot, make_window, first_run, gps_photos, tmp_path
):
    first_run.files[f"{BACKBONE_REPO}/{FILE}"] = PAYLOAD
    window = make_window(pipeline_factory=needs_backbone)
    qtbot.waitUntil(lambda: window.model_state == "missing", timeout=30_000)
    panel = window.model_panel
    assert window.model_info.wanted == BACKBONE
    assert panel.weights_button.isVisible()
    assert panel.weights_button.text() == "Get the pretrained model…"
    text = panel.text.text()
    assert "OpenAI CLIP ViT-L/14 image encoder weights" in text and "1.7 GB" in text
    assert first_run.url in text and "GeoCLIP's heads are already installed" in text

    window.prompts.confirm_answer = False  # asked first: no means nothing happens
    panel.weights_button.click()
    title, question = window.prompts.asked[-1][1:]
    assert title == "Get the pretrained model" and "1.7 GB" in question
    assert first_run.url in question and "continues" in question and "sha256" in question
    assert not window.tasks.busy and first_run.requests == []

    first_run.hold_after = HOLD  # the server stops half way until the test lets it go on
    window.prompts.confirm_answer = True
    panel.weights_button.click()
    qtbot.waitUntil(lambda: panel.download_bar.value() > 0, timeout=20_000)
    assert panel.download_text.text().endswith(" MB of 4 MB")  # decimal MB of the announced size
    assert panel.cancel_button.isVisible() and not panel.weights_button.isVisible()
    assert window.model_panel.isVisible() and window.tasks.busy  # the window answers meanwhile
    panel.cancel_button.click()
    first_run.release.set()
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=20_000)
    dest = weights_path(tmp_path)
    part = dest.with_name(dest.name + ".part")
    kept = part.stat().st_size  # what had arrived when the cancel was seen
    assert 0 < kept < len(PAYLOAD) and not dest.exists()
    note = f"{megabytes(kept)} of 4 MB are kept"
    assert note in panel.note.text() and "continue" in panel.note.text()
    assert window.notices[-1].startswith(f"Download cancelled: {note}")
    assert window.model_state == "missing" and panel.weights_button.isVisible()

    panel.weights_button.click()  # the second click continues from the kept part
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=20_000)
    assert first_run.blob_requests() == [(None, 200), (f"bytes={kept}-", 206)]
    assert dest.read_bytes() == PAYLOAD and not part.exists()
    wait_model(qtbot, window)
    assert window.model_info.engines == ("geoclip",) and not panel.isVisible()
    assert window.model_label.text().startswith("Model: GeoCLIP")
    add_photos(qtbot, window, gps_photos[:2])
    wait_loaded(qtbot, window)
    predict_and_wait(qtbot, window, window.session.keys())
    assert [p.prediction.engine for p in window.session.photos] == ["geoclip", "geoclip"]


def test_a_failed_download_says_how_to_bring_the_file_by_hand(qtbot, make_window, first_run):
    window = make_window(pipeline_factory=needs_backbone)  # the server holds no weights: 404
    qtbot.waitUntil(lambda: window.model_state == "missing", timeout=30_000)
    window.get_encoder_weights()
    qtbot.waitUntil(lambda: bool(window.prompts.errors), timeout=20_000)
    title, message = window.prompts.errors[-1]
    assert title == "Get the pretrained model"
    assert message.startswith("could not download the OpenAI CLIP ViT-L/14 image encoder weights")
    assert "open_clip_pytorch_model.bin" in message and BACKBONE_REPO in message
    assert "Settings > Encoder weights file" in message and "--encoder-weights FILE" in message
    assert "retries" in window.model_panel.note.text()
    assert window.model_state == "missing" and window.model_panel.weights_button.isVisible()


def test_a_checkpoint_on_vit_l14_without_its_weights_offers_the_same_download(
    qtbot, make_window, first_run, backbone_checkpoint
):
    settings = Settings(checkpoint=str(backbone_checkpoint), tile_url="")
    window = make_window(settings, pipeline_factory=needs_backbone)
    qtbot.waitUntil(lambda: window.model_state == "weights", timeout=30_000)
    panel = window.model_panel
    assert window.model_info.wanted == BACKBONE and panel.weights_button.isVisible()
    assert "The image encoder's weights are missing" in panel.text.text()
    assert "fetches the OpenAI CLIP ViT-L/14 image encoder weights" in panel.text.text()
