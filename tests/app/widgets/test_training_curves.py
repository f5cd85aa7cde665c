"""The learning-rate plot reads: a constant 1e-3 sits inside a range from 0 with ticks that
say 1e-3 (pyqtgraph alone spread it over ±0.5, where it sat on the tick labelled 0)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.display


@pytest.fixture
def curves(qtbot):
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    from app.widgets.training_curves import TrainingCurves

    widget = TrainingCurves()
    widget.resize(800, 600)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _ticks(curves) -> list[tuple[float, list[float], list[str]]]:
    """(spacing, values, labels) of each tick level the real axis draws on its range now."""
    plot = curves.plots["lr"]
    axis, low_high = plot.getAxis("left"), plot.getViewBox().viewRange()[1]
    levels = axis.tickValues(*low_high, plot.getViewBox().height())
    return [(s, list(v), axis.tickStrings(v, axis.scale, s)) for s, v in levels]


def test_a_constant_learning_rate_reads_1e_3(curves):
    curves.add_records([{"step": s, "lr": 1e-3, "loss": 1.0} for s in range(0, 200, 2)])
    low, high = curves.plots["lr"].getViewBox().viewRange()[1]
    assert low == 0 and 1e-3 < high < 2e-3  # the line sits inside, well above 0
    (spacing, values, labels), *finer = _ticks(curves)
    assert "1e-3" in labels and spacing < 1e-3
    assert [float(label) for label in labels] == pytest.approx(values, abs=1e-12)
    for _, values, labels in finer:  # finer levels read what they mark too
        assert [float(label) for label in labels] == pytest.approx(values, rel=1e-6)


def test_a_decaying_learning_rate_reads_in_scientific_notation(curves):
    from app.widgets.training_curves import scientific

    rates = [3e-4 * (1 - s / 400) + 3e-5 for s in range(0, 400, 4)]
    curves.add_records([{"step": 4 * i, "lr": r} for i, r in enumerate(rates)])
    (_, values, labels), *_ = _ticks(curves)
    assert all(label == "0" or "e-" in label for label in labels)
    assert [float(label) for label in labels] == pytest.approx(values, abs=1e-12)
    assert [scientific(v, 5e-5) for v in (2.5e-4, 3e-4, 1.05e-3, 0.0)] == [
        "2.5e-4",
        "3e-4",
        "1.05e-3",
        "0",
    ]
    assert scientific(9.9999e-4, 1e-3) == "1e-3"
