"""Settings: validation, atomic JSON round trip, environment override, damaged files."""

import json

import pytest

from app.model import settings as st
from app.model.settings import Settings, load_settings, save_settings


def test_round_trip_keeps_every_field(tmp_path):
    custom = Settings(
        checkpoint="/runs/l47",
        encoder_weights="/w/clip.safetensors",
        device="cpu",
        num_samples=32,
        sampler="ddpm",
        num_steps=100,
        decode_radius_km=40.0,
        cluster_radius_km=300.0,
        best_guess="cluster",
        engine="hybrid",
        hybrid_radius_km=150.0,
        tile_url="https://tiles.example/{z}/{x}/{y}.png",
        write_backup=False,
        write_method="builtin",
        model_url="https://models.example/l47.safetensors",
    )
    path = save_settings(custom, tmp_path)
    assert path == tmp_path / "settings.json"
    assert load_settings(tmp_path) == (custom, None)
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temporary left


def test_environment_variables_move_the_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCDIFF_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("LOCDIFF_DATA_DIR", str(tmp_path / "data"))
    assert st.config_dir() == tmp_path / "cfg" and st.data_dir() == tmp_path / "data"
    save_settings(Settings(num_samples=8))
    assert (tmp_path / "cfg" / "settings.json").exists()
    assert load_settings()[0].num_samples == 8


def test_without_the_variables_the_per_user_folders_are_used(monkeypatch):
    monkeypatch.delenv("LOCDIFF_CONFIG_DIR")
    monkeypatch.delenv("LOCDIFF_DATA_DIR")
    assert st.config_dir().name == "LocDiff Studio"
    assert st.data_dir().name == "LocDiff Studio"


def test_missing_file_gives_defaults_silently(tmp_path):
    assert load_settings(tmp_path) == (Settings(), None)


def test_damaged_file_gives_defaults_and_names_the_file(tmp_path):
    (tmp_path / "settings.json").write_text("{not json", encoding="utf-8")
    settings, message = load_settings(tmp_path)
    assert settings == Settings()
    assert str(tmp_path / "settings.json") in message and "default" in message


def test_bad_fields_fall_back_one_by_one(tmp_path):
    raw = {"settings": {"num_samples": "many", "device": "tpu", "sampler": "ddpm", "x": 1}}
    (tmp_path / "settings.json").write_text(json.dumps(raw), encoding="utf-8")
    settings, message = load_settings(tmp_path)
    assert settings.sampler == "ddpm"  # the valid field is kept
    assert settings.num_samples == Settings().num_samples and settings.device == "auto"
    assert "num_samples" in message and "device" in message and "tpu" in message


def test_whole_numbers_are_accepted_for_km(tmp_path):
    raw = {"settings": {"cluster_radius_km": 100}}
    (tmp_path / "settings.json").write_text(json.dumps(raw), encoding="utf-8")
    settings, message = load_settings(tmp_path)
    assert settings.cluster_radius_km == 100.0 and isinstance(settings.cluster_radius_km, float)
    assert message is None


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("device", "gpu", "auto, cpu, cuda"),
        ("num_samples", 0, "from 1"),
        ("sampler", "euler", "ddim"),
        ("cluster_radius_km", 0.0, "more than 0"),
        ("decode_radius_km", -1.0, ">= 0"),
        ("tile_url", "https://t.example/{z}/{x}.png", "{y}"),
        ("tile_url", "tiles/{z}/{x}/{y}", "http"),
        ("tile_url", "file:///tiles/{z}/{x}/{y}.png", "name a host"),  # the map's own rule
        ("write_method", "pillow", "exiftool"),
        ("write_backup", "yes", "true or false"),
        ("engine", "clip", "auto, geoclip, locdiff, hybrid"),
        ("hybrid_radius_km", 0.0, "more than 0"),
        ("best_guess", "median", "mode, cluster"),
    ],
)
def test_invalid_values_say_what_to_fix(field, value, words):
    with pytest.raises(ValueError, match=field) as exc:
        Settings(**{field: value})
    assert words in str(exc.value)


def test_empty_tile_url_means_offline():
    assert Settings(tile_url="").tile_url == ""


def test_a_file_from_before_the_engine_choice_loads_as_before(tmp_path):
    raw = {"format_version": 1, "settings": {"checkpoint": "/runs/a", "num_samples": 8}}
    (tmp_path / "settings.json").write_text(json.dumps(raw), encoding="utf-8")
    assert load_settings(tmp_path) == (Settings(checkpoint="/runs/a", num_samples=8), None)
    assert Settings().engine == "auto" and Settings().hybrid_radius_km == 200.0


def test_an_unknown_engine_falls_back_to_auto_and_says_so(tmp_path):
    raw = {"settings": {"engine": "planet", "hybrid_radius_km": 50}}
    (tmp_path / "settings.json").write_text(json.dumps(raw), encoding="utf-8")
    settings, message = load_settings(tmp_path)
    assert settings.engine == "auto" and settings.hybrid_radius_km == 50.0
    assert "engine must be one of auto, geoclip, locdiff, hybrid" in message and "planet" in message


def test_the_best_guess_choices_are_the_predictors():
    from locdiff_core.predictor import BestGuess

    assert tuple(g.value for g in BestGuess) == st.BEST_GUESSES
    assert Settings().best_guess == BestGuess.MODE.value
