"""The tracks panel: every setting emits the options at once, a bad offset says why and is not
used, the steps, the zone (typed names, the automatic one), and the track list's toggles."""

import datetime as dt

import pytest

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")

from PySide6.QtCore import Qt  # noqa: E402

from app.model.geotagging import GeotagOptions, TrackLine  # noqa: E402
from app.widgets.tracks_panel import TracksPanel  # noqa: E402


@pytest.fixture
def panel(qtbot):
    widget = TracksPanel()
    qtbot.addWidget(widget)
    emitted = []
    widget.options_changed.connect(emitted.append)
    return widget, emitted


def test_offsets_typed_or_stepped_are_emitted_and_bad_ones_explained(panel):
    widget, emitted = panel
    widget.offset.setText("-00:01:30")
    assert emitted[-1].offset == dt.timedelta(seconds=-90)
    widget.step_offset(60)
    assert widget.offset.text() == "-00:00:30" and emitted[-1].offset == dt.timedelta(seconds=-30)
    count = len(emitted)
    widget.offset.setText("ten past")
    assert len(emitted) == count  # not used
    assert "use [+-]hh:mm:ss" in widget.offset_problem()
    widget.offset.setText("+01:00:00")
    assert widget.offset_problem() == "" and emitted[-1].offset == dt.timedelta(hours=1)


def test_zone_rules_and_speed(panel):
    widget, emitted = panel
    widget.zone.setEditText("Europe/Ro")  # being typed: nothing yet
    assert not emitted
    widget.zone.setEditText("Europe/Rome")
    assert emitted[-1].zone == "Europe/Rome"
    widget.zone.setCurrentIndex(0)
    assert emitted[-1].zone == ""  # automatic
    widget.show_summary("3 photos placed", "Europe/Rome", "from trip.gpx's first fix")
    assert widget.zone.itemText(0) == "Automatic (Europe/Rome, from trip.gpx's first fix)"
    widget.max_gap.setValue(30)
    widget.interpolate.setValue(600)
    widget.neighbours.setChecked(False)
    widget.speed.setValue(900)
    assert emitted[-1] == GeotagOptions("", dt.timedelta(0), 30.0, 600.0, False, 900.0)
    assert widget.summary.text() == "3 photos placed"


def test_the_list_shows_each_track_with_a_toggle(panel, qtbot):
    widget, _ = panel
    line = TrackLine(7, "trip.gpx", "/t/trip.gpx", 0.0, 3600.0, 361, True, (), "#d6336c")
    widget.show_tracks([line])
    item = widget.tracks.item(0)
    assert item.text() == "trip.gpx: 1970-01-01 00:00 to 01:00 UTC, 361 fixes"
    assert item.checkState() == Qt.CheckState.Checked and "elevation: yes" in item.toolTip()
    with qtbot.waitSignal(widget.track_toggled) as toggled:
        item.setCheckState(Qt.CheckState.Unchecked)
    assert toggled.args == [7, False]
    with qtbot.waitSignal(widget.remove_requested) as removed:
        widget.remove_button.click()  # none selected: all
    assert removed.args == [[7]]
