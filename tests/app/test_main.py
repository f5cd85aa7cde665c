"""The ``locdiff-app`` command line: a fast headless --help, and the screenshot mode."""

import subprocess
import sys

import pytest

from app import main as app_main

ROOT = app_main.Path(__file__).resolve().parents[2]


def test_help_runs_without_a_display(capsys):
    with pytest.raises(SystemExit) as exc:
        app_main.build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--checkpoint", "--screenshot", "--predict", "--settings-dir"):
        assert flag in out


def test_help_imports_neither_qt_nor_torch():
    code = (
        "import sys\n"
        "from app.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('PySide6.QtWidgets', 'torch') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout and "locdiff-app" in result.stdout


def version_lines(capsys, argv: list[str]) -> dict[str, str]:
    assert app_main.main(argv) == 0
    rows = (line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    return {label: value.strip() for label, value in rows}


def test_version_prints_the_diagnostics_summary(capsys, tmp_path):
    from importlib import metadata

    import locdiff_core

    lines = version_lines(capsys, ["--version"])
    assert lines["LocDiff Studio"] == locdiff_core.__version__
    assert lines["torch"].startswith(metadata.version("torch"))
    assert lines["CUDA"].startswith(("not checked", "available", "not available"))
    assert lines["PySide6"] == metadata.version("PySide6") and lines["Qt"]
    assert lines["Model"] == "GeoCLIP (no checkpoint), as configured in settings"
    assert lines["Engine"] == "Auto, as configured in settings"
    assert lines["Settings file"] == str(tmp_path / "config" / "settings.json")
    assert lines["Data folder"] == str(tmp_path / "data")
    assert lines["Map tile cache"] == str(tmp_path / "cache")
    assert lines["Session file"] == str(tmp_path / "data" / "session.sqlite")
    elsewhere = tmp_path / "elsewhere"
    lines = version_lines(capsys, ["--version", "--settings-dir", str(elsewhere)])
    assert lines["Settings file"] == str(elsewhere / "settings.json")


def test_version_needs_no_display_nor_torch():
    code = (
        "import sys\n"
        "from app.main import main\n"
        "code = main(['--version'])\n"
        "heavy = [m for m in ('PySide6.QtWidgets', 'PySide6.QtGui', 'torch') if m in sys.modules]\n"
        "print('HEAVY', heavy, 'EXIT', code)\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY [] EXIT 0" in result.stdout and "LocDiff Studio:" in result.stdout


@pytest.mark.display
def test_screenshot_of_the_loaded_list(qtbot, samples, tmp_path):
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    from PySide6.QtGui import QImage

    out = tmp_path / "shots" / "window.png"
    settings_dir = tmp_path / "settings"
    code = app_main.main(
        ["--screenshot", str(out), "--settings-dir", str(settings_dir), str(samples / "gps")]
    )
    assert code == 0 and out.exists()
    image = QImage(str(out))
    assert image.width() >= 800 and image.height() >= 500
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, 300, 7)}
    assert len(colours) > 50  # thumbnails and text, not a blank window


@pytest.mark.display
def test_screenshot_with_predict_and_no_model_fails_with_a_message(
    qtbot, samples, tmp_path, capsys
):
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    out = tmp_path / "never.png"
    code = app_main.main(
        ["--screenshot", str(out), "--predict", "--timeout", "60", str(samples / "gps")]
    )
    assert code == 1 and not out.exists()
    assert "cannot predict" in capsys.readouterr().err


@pytest.mark.display
def test_screenshot_times_out_with_a_message(qtbot, samples, tmp_path, capsys):
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    out = tmp_path / "late.png"
    code = app_main.main(["--screenshot", str(out), "--timeout", "0", str(samples / "gps")])
    assert code == 1 and not out.exists()
    assert "timed out after 0 s while loading" in capsys.readouterr().err


@pytest.mark.display
@pytest.mark.parametrize(
    ("finder", "package"),
    [("leaflet_dir", "XStatic-Leaflet"), ("markercluster_dir", "XStatic-Leaflet-MarkerCluster")],
)
def test_a_window_that_cannot_start_says_why(qtbot, tmp_path, capsys, monkeypatch, finder, package):
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    from app.map import map_page

    def missing():
        raise ValueError(f"the map needs the '{package}' package: pip install {package}")

    monkeypatch.setattr(map_page, finder, missing)
    code = app_main.main(["--screenshot", str(tmp_path / "never.png")])
    assert code == 2 and not (tmp_path / "never.png").exists()
    assert capsys.readouterr().err.startswith(f"locdiff-app: the map needs the '{package}'")


@pytest.mark.display
def test_checkpoint_flag_is_used_but_not_saved(qtbot, tmp_path):
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    from app.model.settings import load_settings

    run = tmp_path / "run"  # not there: the window says so, and nothing is loaded
    args = app_main.build_parser().parse_args(["--checkpoint", str(run)])
    window = app_main.create_window(args)
    qtbot.addWidget(window)
    assert window.settings.checkpoint == str(run)
    qtbot.waitUntil(lambda: window.model_state == "missing", timeout=10_000)
    assert "no checkpoint there" in window.model_panel.text.text()
    assert load_settings()[0].checkpoint == ""
    window.shutdown()
