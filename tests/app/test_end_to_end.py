"""End to end with a real (tiny, random-weight) open_clip encoder, a checkpoint trained on its
embeddings in the test, and the real map page: photos in, predictions out, the page's state
holding the pins."""

import pytest
from app_helpers import add_photos, map_state, wait_loaded, wait_model

pytestmark = [pytest.mark.display, pytest.mark.slow]
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
pytest.importorskip("open_clip", reason="open_clip is not installed")

from app.model.photo import PhotoState  # noqa: E402
from app.model.settings import Settings  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tiny_encoder, tmp_path_factory):
    """A small CS-UNet trained here (a few steps) on the tiny encoder's embeddings of generated
    pictures, so the checkpoint carries that encoder's identity as a real run's does."""
    import numpy as np
    from PIL import Image

    from locdiff_core.diffusion import DiffusionConfig
    from locdiff_core.image_encoder import ImageEncoder
    from trainer.config import TrainConfig
    from trainer.data import save_embeddings
    from trainer.train import train

    encoder = ImageEncoder.load(tiny_encoder)
    rng = np.random.default_rng(0)
    pictures = [
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(16)
    ]
    lat, lon = rng.uniform(-60, 70, 16), rng.uniform(-180, 180, 16)
    folder = tmp_path_factory.mktemp("e2e-run")
    data = folder / "train.npz"
    save_embeddings(data, encoder.embed_images(pictures), lat, lon, encoder=encoder.identity)
    run = folder / "run"
    config = TrainConfig(
        data=data, out=run, degree=8, epochs=2, batch_size=8, widths=(32,), dim_bottleneck=16,
        dropout=0.0, lr=1e-3, diffusion=DiffusionConfig(20), log_every=1,
    )  # fmt: skip
    train(config)
    return run


def test_photos_to_pins_with_the_real_encoder(
    qtbot, make_window, tiny_run, tiny_encoder, gps_photos
):
    settings = Settings(
        checkpoint=str(tiny_run),
        encoder_weights=str(tiny_encoder.weights),
        device="cpu",
        num_samples=4,
        num_steps=3,
        tile_url="",
    )
    window = make_window(settings, pipeline_factory=None)  # the app's own pipeline
    add_photos(qtbot, window, gps_photos[:4])
    wait_model(qtbot, window, timeout=120_000)
    assert "degree 8" in window.model_label.text()
    window.predict_all()  # every photo has GPS in its file: none is predicted unasked
    assert window.notices[-1].startswith("Left out 4 photos that have GPS in the file")
    window.predict(window.session.keys())
    qtbot.waitUntil(lambda: not window.predictor.busy, timeout=120_000)
    assert [p.state for p in window.session.photos] == [PhotoState.PREDICTED] * 4
    key = window.session.photos[0].key
    window.photo_list.select_keys([key])
    qtbot.waitUntil(lambda: window.details.key == key, timeout=5_000)
    wait_loaded(qtbot, window)
    assert "°" in window.details.best.text() and window.details.candidates.rowCount() >= 1
    state = map_state(qtbot, window)
    assert sorted(p["key"] for p in state["photos"]) == sorted(window.session.keys())
    assert {p["kind"] for p in state["photos"]} == {"exif"}  # the file's GPS stays the pin
    assert state["selection"] == [key] and state["samples"] == 4 and state["density"] is True
