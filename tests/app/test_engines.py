"""The engine choice in the window (offscreen): the toolbar's box lists what the model offers,
the details panel names the engine of each guess and words its shares, the exports carry it,
and an engine the model cannot run is refused with the fix."""

import csv
import dataclasses
import json
import re

import pytest
from app_helpers import add_photos, geoclip_pipeline, predict_and_wait, wait_loaded, wait_model

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from app.model.settings import Settings, load_settings  # noqa: E402


def box_texts(window) -> list[str]:
    combo = window.engine_box.combo
    return [combo.itemText(i) for i in range(combo.count())]


def choose(window, value: str) -> None:
    """Pick ``value`` in the engine box, as the user does."""
    combo = window.engine_box.combo
    combo.setCurrentIndex(combo.findData(value))
    combo.activated.emit(combo.currentIndex())


def show(qtbot, window, key: str) -> None:
    window.photo_list.select_keys([key])
    qtbot.waitUntil(lambda: window._current == key, timeout=5_000)
    window.details.refresh()


def test_details_and_exports_name_the_engine_of_each_guess(
    qtbot, make_window, backbone_checkpoint, gps_photos, tmp_path
):
    settings = Settings(
        checkpoint=str(backbone_checkpoint),
        num_samples=4,
        num_steps=2,
        tile_url="",
        hybrid_radius_km=20_000.0,
    )
    window = make_window(settings, pipeline_factory=geoclip_pipeline)
    wait_model(qtbot, window)
    assert box_texts(window) == [
        "Auto: LocDiff-H (hybrid)",
        "GeoCLIP",
        "LocDiffusion",
        "LocDiff-H (hybrid)",
    ]
    assert window.engine_box.combo.isEnabled()
    add_photos(qtbot, window, gps_photos[:2])
    wait_loaded(qtbot, window)
    keys = window.session.keys()
    predict_and_wait(qtbot, window, keys)
    show(qtbot, window, keys[0])
    details = window.details
    # the engine and the model that made the guess (the model is kept with it in the session)
    assert re.fullmatch(
        r"LocDiff-H \(hybrid\) · .+: degree \d+, .+, with GeoCLIP", details.engine.text()
    )
    assert details.radii.text().startswith("50% of the probability within")
    assert details.candidates.horizontalHeaderItem(0).text() == "Probability"
    assert details.centre_label.text() == "Top place (paper)"

    choose(window, "locdiff")
    assert window.settings.engine == "locdiff" == load_settings()[0].engine  # saved
    predict_and_wait(qtbot, window, keys[:1])
    show(qtbot, window, keys[0])
    assert details.engine.text().startswith("LocDiffusion · ")
    assert details.radii.text().startswith("50% of samples within")
    assert details.candidates.horizontalHeaderItem(0).text() == "Samples"
    assert details.centre_label.text() == "Centre (paper)"

    window.outputs.export_to(keys, tmp_path / "out.csv")
    window.outputs.export_to(keys, tmp_path / "out.geojson")
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=10_000)
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert [r["engine"] for r in rows] == ["locdiff", "hybrid"]
    doc = json.loads((tmp_path / "out.geojson").read_text(encoding="utf-8"))
    assert [f["properties"]["engine"] for f in doc["features"]] == ["locdiff", "hybrid"]


def test_geoclip_alone_without_a_checkpoint(qtbot, make_window, gps_photos):
    window = make_window(pipeline_factory=geoclip_pipeline)
    wait_model(qtbot, window)
    assert not window.model_panel.isVisible()
    assert window.model_label.text().startswith("Model: GeoCLIP on CLIP ViT-L/14 (openai)")
    assert box_texts(window) == ["Auto: GeoCLIP", "GeoCLIP"]
    add_photos(qtbot, window, gps_photos[:1])
    wait_loaded(qtbot, window)
    predict_and_wait(qtbot, window, window.session.keys())
    show(qtbot, window, window.session.keys()[0])
    assert window.details.engine.text() == "GeoCLIP · GeoCLIP on CLIP ViT-L/14 (openai)"
    assert window.details.radii.text().startswith("50% of the probability within")


def test_an_engine_the_model_does_not_offer_is_refused_with_the_fix(
    qtbot, make_window, fast_settings, gps_photos
):
    window = make_window(dataclasses.replace(fast_settings, engine="hybrid"))  # LocDiffusion only
    wait_model(qtbot, window)
    assert box_texts(window) == [
        "Auto: LocDiffusion",
        "LocDiffusion",
        "LocDiff-H (hybrid) (not offered by this model)",
    ]
    add_photos(qtbot, window, gps_photos[:1])
    wait_loaded(qtbot, window)
    keys = window.session.keys()
    assert window.predict(keys) is None
    refusal = window.notices[-1]
    assert refusal.startswith("LocDiff-H (hybrid) cannot predict with this model")
    assert "trained on CLIP ViT-L/14 (openai)" in refusal and "Engine box" in refusal
    assert not window.session.photo(keys[0]).queued
    choose(window, "auto")
    assert window.settings.engine == "auto"
    assert box_texts(window) == ["Auto: LocDiffusion", "LocDiffusion"]
    predict_and_wait(qtbot, window, keys)
    assert window.session.photo(keys[0]).prediction.engine == "locdiff"


def test_without_a_model_the_engine_box_waits(qtbot, make_window):
    window = make_window()
    qtbot.waitUntil(lambda: window.model_state == "missing", timeout=20_000)
    assert box_texts(window) == ["Auto"] and not window.engine_box.combo.isEnabled()
