"""The place search box over the real offline place data: a single match chosen at once,
several listed and one chosen (by call, by keyboard), no match and a failed search explained,
and only the latest request answered."""

import pytest

pytestmark = pytest.mark.display
pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
pytest.importorskip("reverse_geocode", reason="the offline place data is not installed")

from PySide6.QtCore import Qt  # noqa: E402

from app.widgets.place_search_box import PLACEHOLDER, SEARCHING, PlaceSearchBox  # noqa: E402
from app.workers import place_lookup  # noqa: E402
from app.workers.place_lookup import PlaceHit, PlaceLookup  # noqa: E402

WAIT_MS = 30_000  # the first search builds the index (about two seconds, more on a busy CI)
AREZZO = (43.46, 11.88)


@pytest.fixture
def lookup():
    worker = PlaceLookup()
    yield worker
    worker.stop()


@pytest.fixture
def box(qtbot, lookup):
    widget = PlaceSearchBox(lookup)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def search_and_wait(qtbot, box, lookup, text):
    box.search(text)
    qtbot.waitUntil(lambda: lookup.idle, timeout=WAIT_MS)


def test_a_single_match_is_chosen_at_once(qtbot, box, lookup):
    assert box.edit.placeholderText() == PLACEHOLDER and box.edit.isClearButtonEnabled()
    with qtbot.waitSignal(box.place_chosen, timeout=WAIT_MS) as chosen:
        box.search("Arezzo")
        assert box.status.text() == SEARCHING and box.results() == []
    lat, lon, label = chosen.args
    assert abs(lat - AREZZO[0]) < 0.1 and abs(lon - AREZZO[1]) < 0.1
    assert label == "Arezzo, Tuscany, Italy"
    qtbot.waitUntil(lambda: lookup.idle, timeout=WAIT_MS)
    assert [h.label for h in box.results()] == [label] and box.message() == ""
    assert box.status.isHidden() and not box.popup.isVisible() and box.edit.text() == label


def test_several_matches_are_listed_and_one_chosen(qtbot, box, lookup):
    search_and_wait(qtbot, box, lookup, "Paris")
    hits = box.results()
    assert 1 < len(hits) <= 10 and box.message() == ""
    assert all(isinstance(h, PlaceHit) for h in hits)
    assert hits[0].label == "Paris, Île-de-France, France"
    assert box.popup.isVisible() and box.popup.list.count() == len(hits)
    first = box.popup.list.item(0).text()
    assert first.startswith("Paris, Île-de-France, France · ") and first.endswith(" people")
    with qtbot.waitSignal(box.place_chosen) as chosen:
        box.choose(1)
    assert chosen.args == [hits[1].lat, hits[1].lon, hits[1].label]
    assert "Texas" in hits[1].label and not box.popup.isVisible()
    with pytest.raises(ValueError, match="search first"):
        box.choose(len(hits))


def test_enter_searches_and_the_keyboard_chooses(qtbot, box, lookup):
    box.edit.setText("Paris")
    qtbot.keyClick(box.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: lookup.idle, timeout=WAIT_MS)
    second = box.results()[1]
    rows = box.popup.list
    with qtbot.waitSignal(box.place_chosen) as chosen:
        qtbot.keyClick(rows, Qt.Key.Key_Down)
        qtbot.keyClick(rows, Qt.Key.Key_Return)
    assert chosen.args == [second.lat, second.lon, second.label]


def test_a_click_chooses_once(qtbot, box, lookup):
    search_and_wait(qtbot, box, lookup, "Paris")
    chosen = []
    box.place_chosen.connect(lambda *args: chosen.append(args))
    rows = box.popup.list
    where = rows.visualItemRect(rows.item(2)).center()
    qtbot.mouseClick(rows.viewport(), Qt.MouseButton.LeftButton, pos=where)
    third = box.results()[2]
    assert chosen == [(third.lat, third.lon, third.label)]


def test_escape_closes_the_list_and_typing_goes_back_to_the_box(qtbot, box, lookup):
    box.edit.setText("Paris")
    search_and_wait(qtbot, box, lookup, box.edit.text())
    qtbot.keyClick(box.popup.list, Qt.Key.Key_Comma)
    assert not box.popup.isVisible() and box.edit.text() == "Paris,"
    search_and_wait(qtbot, box, lookup, "Paris")
    qtbot.keyClick(box.popup.list, Qt.Key.Key_Escape)
    assert not box.popup.isVisible()


def test_no_match_says_so(qtbot, box, lookup):
    search_and_wait(qtbot, box, lookup, "Arezzo, Chile")
    assert box.results() == []
    message = box.message()
    assert message.startswith("no town or city called 'Arezzo'") and "chile" in message
    assert box.edit.toolTip() == message
    row = box.popup.list.item(0)
    assert box.popup.list.count() == 1 and row.text() == message
    assert not row.flags() & Qt.ItemFlag.ItemIsEnabled


def test_a_failed_search_is_a_message(qtbot, box, lookup, monkeypatch):
    def broken(query, limit=10):
        raise RuntimeError("index exploded")

    monkeypatch.setattr(place_lookup, "search_places", broken)
    search_and_wait(qtbot, box, lookup, "Arezzo")
    assert box.results() == []
    assert box.message() == "place search failed: RuntimeError: index exploded"


def test_only_the_latest_request_is_answered(qtbot, box, lookup):
    answers = []
    lookup.found.connect(lambda *args: answers.append(args))
    older = box.search("Arezzo")
    newer = box.search("Paris, France")
    assert newer > older
    qtbot.waitUntil(lambda: lookup.idle, timeout=WAIT_MS)
    assert [(request, query) for request, query, *_ in answers] == [(newer, "Paris, France")]
    assert box.results()[0].label.startswith("Paris, ") and "France" in box.results()[0].label


def test_warm_up_and_stop(qtbot, lookup):
    lookup.warm_up()
    assert not lookup.idle
    qtbot.waitUntil(lambda: lookup.idle, timeout=WAIT_MS)
    lookup.stop()
    assert lookup.search("Arezzo") == 0 and lookup.idle
