"""A place search box for the map's toolbar: type "Arezzo" or "Arezzo, Italy" and press Enter.

The search runs in a :class:`app.workers.place_lookup.PlaceLookup` (offline; the first one
builds its index, about two seconds); meanwhile a small label beside the box says "searching…".
One place found is chosen at once; several are listed in a popup under the box (click one, or
arrow keys and Enter; Escape closes it, typing goes back to the box). No match, or a failed
search, is the popup's one disabled row and the box's tooltip. A chosen place is emitted as
:attr:`PlaceSearchBox.place_chosen` (lat, lon, label).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.workers.place_lookup import PlaceHit, PlaceLookup

PLACEHOLDER = "Search places (offline)"
SEARCHING = "searching…"
POPUP_MIN_WIDTH = 320
POPUP_MAX_WIDTH = 520
HIT_ROLE = Qt.ItemDataRole.UserRole + 1


def hit_text(hit: PlaceHit) -> str:
    """``Arezzo, Tuscany, Italy · 99,000 people`` (the population left out when unknown)."""
    return f"{hit.label} · {hit.population:,} people" if hit.population > 0 else hit.label


class _ResultsPopup(QFrame):
    """The results under the box: a list in a popup frame, closed by Escape or a click
    outside; other keys typed into it go back to the box."""

    def __init__(self, box: QLineEdit, parent: QWidget) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._box = box
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(False)
        self.list.installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)

    def show_under(self, anchor: QWidget) -> None:
        """Show the popup just below ``anchor``, sized to its rows."""
        width = min(POPUP_MAX_WIDTH, max(POPUP_MIN_WIDTH, anchor.width()))
        self.list.setFixedWidth(width)
        rows = sum(self.list.sizeHintForRow(r) for r in range(self.list.count()))
        self.list.setFixedHeight(rows + 2 * self.list.frameWidth() + 4)
        self.adjustSize()
        self.move(anchor.mapToGlobal(QPoint(0, anchor.height())))
        self.show()
        self.list.setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if watched is self.list and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Escape:
                self.hide()
                self._box.setFocus()
                return True
            if (
                event.text().isprintable()
                and event.text()
                and not event.modifiers()
                & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
            ):
                self.hide()
                self._box.setFocus()
                QApplication.sendEvent(self._box, event)
                return True
        return super().eventFilter(watched, event)


class PlaceSearchBox(QWidget):
    """A line edit that searches places with ``lookup`` on Enter, and the popup of what it
    found. The box answers only its own latest request."""

    place_chosen = Signal(float, float, str)  # lat, lon (degrees), label

    def __init__(self, lookup: PlaceLookup, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lookup = lookup
        self._request = 0  # the box's latest request (0: none)
        self._hits: list[PlaceHit] = []
        self._message = ""
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(PLACEHOLDER)
        self.edit.setClearButtonEnabled(True)
        self.edit.returnPressed.connect(lambda: self.search(self.edit.text()))
        self.status = QLabel()
        self.status.setEnabled(False)  # greyed: a hint, not a value
        self.status.hide()
        self.popup = _ResultsPopup(self.edit, self)
        self.popup.list.itemActivated.connect(self._item_chosen)
        self.popup.list.itemClicked.connect(self._item_chosen)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(self.status)
        lookup.found.connect(self._show_answer)

    # -- for callers and tests -------------------------------------------------------------
    def search(self, text: str) -> int:
        """Search for ``text``; returns the request's number (0: the lookup is stopped)."""
        self.popup.hide()
        self._hits, self._message = [], ""
        self.edit.setToolTip("")
        self._request = self._lookup.search(text)
        self._set_searching(self._request != 0)
        return self._request

    def results(self) -> list[PlaceHit]:
        """The places the latest answer found, best first (empty while searching)."""
        return list(self._hits)

    def message(self) -> str:
        """Why the latest answer found nothing (the core's sentence, or "place search
        failed: ..."); empty when it found places or while searching."""
        return self._message

    def choose(self, row: int) -> None:
        """Choose result ``row``: emits :attr:`place_chosen` and closes the popup."""
        if not 0 <= row < len(self._hits):
            raise ValueError(f"no result {row}: there are {len(self._hits)}; search first")
        hit = self._hits[row]
        self.popup.hide()
        self.edit.setText(hit.label)
        self.place_chosen.emit(hit.lat, hit.lon, hit.label)

    # -- answers ---------------------------------------------------------------------------
    def _set_searching(self, searching: bool) -> None:
        self.status.setText(SEARCHING if searching else "")
        self.status.setVisible(searching)

    def _show_answer(self, request: int, _query: str, hits: list, message: str) -> None:
        if request != self._request:  # another caller's request, or one this box replaced
            return
        self._set_searching(False)
        self._hits, self._message = list(hits), "" if hits else message
        self.edit.setToolTip(self._message)
        if len(self._hits) == 1:
            self.choose(0)
            return
        self._fill_popup()
        self.popup.show_under(self.edit)

    def _fill_popup(self) -> None:
        rows = self.popup.list
        rows.clear()
        if not self._hits:
            item = QListWidgetItem(self._message)
            item.setFlags(Qt.ItemFlag.NoItemFlags)  # a sentence, not a choice
            rows.addItem(item)
            return
        for row, hit in enumerate(self._hits):
            item = QListWidgetItem(hit_text(hit))
            item.setData(HIT_ROLE, row)
            rows.addItem(item)
        rows.setCurrentRow(0)

    def _item_chosen(self, item: QListWidgetItem) -> None:
        row = item.data(HIT_ROLE)
        if row is not None and self.popup.isVisible():  # a click can also activate: once
            self.choose(int(row))
