import pytest

from app import main as app_main


def test_help_runs_without_a_display(capsys):
    with pytest.raises(SystemExit) as exc:
        app_main.build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    assert "locdiff-app" in capsys.readouterr().out


@pytest.mark.display
def test_placeholder_window_starts(qtbot):
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    window = app_main.create_window()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.windowTitle() == "LocDiff Studio"
