"""The photo list: a table model mirroring the session, a sort/filter proxy and the view.

Model/view all the way (no widget per row). The model is a ``QStandardItemModel`` whose cells
are filled from the session when a photo changes, so painting the list never calls into Python:
measured offscreen with 200 photos, a repaint of the table took 16 ms with a Python
``data()`` (one call per cell and role, each taking the GIL back from a busy prediction worker:
34 ms while predicting) against 6 ms this way. Thumbnails are asked for lazily, for the rows on
screen (after scrolling, sorting or filtering), from
:class:`app.workers.loaders.ThumbnailLoader`, and
kept (small pixmaps: a few MB for thousands of photos). Columns: thumbnail, file name, status
(EXIF GPS / predicted / confirmed / error with the reason) and the place name. The proxy filters
by status and name and sorts by any column, all in C++. The model keeps what each row shows in
Python and never reads cells back nor stores None in them (PySide6 6.12 on Python 3.11 loses a
reference to None on each such call; pyproject.toml keeps that release out).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QRegularExpression,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.model.photo import Photo, PhotoState
from app.model.session import Session
from app.workers.loaders import ThumbnailLoader

THUMB_COLUMN, NAME_COLUMN, STATUS_COLUMN, PLACE_COLUMN = range(4)
HEADERS = ("", "File", "Status", "Place")
KEY_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
FILTER_ROLE = Qt.ItemDataRole.UserRole + 3  # "<state>|<file name>", matched by the proxy
STATE_ORDER = {state: i for i, state in enumerate(PhotoState)}
FILTERS = {  # label -> states shown (None: all)
    "All photos": None,
    "Without a location": {PhotoState.NO_LOCATION, PhotoState.READING},
    "With EXIF GPS": {PhotoState.EXIF},
    "Predicted": {PhotoState.PREDICTED},
    "From tracks": {PhotoState.PROPOSED},
    "Confirmed": {PhotoState.CONFIRMED},
    "Errors": {PhotoState.ERROR},
}
_ERROR_BRUSH = QBrush(QColor(190, 30, 30))
_PREFETCH_ROWS = 10  # thumbnails asked for beyond the rows on screen
EMPTY_TEXT = "Drop photos or folders here\n(or File > Open photos, Open folder)"
FILTERED_TEXT = "No photo matches the filter"


def _item(text: str = "") -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    return item


class PhotoTableModel(QStandardItemModel):
    """The session as a table, in the session's order; also the session's listener."""

    def __init__(self, session: Session, thumbnails: ThumbnailLoader, parent=None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setHorizontalHeaderLabels(list(HEADERS))
        self.session = session
        self.thumbnails = thumbnails
        self._pixmaps: dict[str, QPixmap] = {}
        self._blank = QPixmap(thumbnails.size, thumbnails.size)
        self._blank.fill(QColor(225, 225, 225))
        self._text_brush = QBrush(QApplication.palette().text())
        self._shown: list[tuple | None] = []  # per row: what its cells show (never read back)
        thumbnails.loaded.connect(self._thumbnail_loaded)
        thumbnails.failed.connect(self._thumbnail_failed)
        session.listeners.append(self)

    def _fill(self, row: int) -> None:
        """Copy the photo's status and place into its cells (only what changed)."""
        photo = self.session.photos[row]
        status, place = photo.status_text(), self.session.place_of(photo)
        shown = (status, photo.state, bool(photo.error), place)
        if self._shown[row] == shown:
            return
        old, self._shown[row] = self._shown[row], shown
        thumb, name, state, where = (self.item(row, c) for c in range(len(HEADERS)))
        tooltip = f"{photo.path}\n{status}"
        if old is None or old[0] != status:
            state.setText(status)
            for item in (thumb, name, state, where):
                item.setToolTip(tooltip)
        if old is None or old[1] != photo.state:
            state.setData(STATE_ORDER[photo.state], SORT_ROLE)
            thumb.setData(f"{photo.state.name}|{photo.name}", FILTER_ROLE)
        if old is None or old[2] != bool(photo.error):
            state.setForeground(_ERROR_BRUSH if photo.error else self._text_brush)
        if old is None or old[3] != place:
            where.setText(place)
            where.setData(place.lower(), SORT_ROLE)

    def _append(self, photo: Photo, row: int) -> None:
        thumb, name = _item(), _item(photo.name)
        thumb.setData(self._pixmaps.get(photo.key, self._blank), Qt.ItemDataRole.DecorationRole)
        thumb.setData(row, SORT_ROLE)  # the thumbnail column sorts in the order of adding
        name.setData(photo.name.lower(), SORT_ROLE)
        cells = [thumb, name, _item(), _item()]
        for item in cells:
            item.setData(photo.key, KEY_ROLE)
        self.appendRow(cells)
        self._shown.append(None)
        self._fill(row)

    # -- thumbnails ------------------------------------------------------------------------
    def request_thumbnails(self, rows: Sequence[int]) -> None:
        """Ask for the thumbnails of these rows (those not loaded, loading or unreadable)."""
        photos = [self.session.photos[row] for row in rows]
        self.thumbnails.request(
            [
                (p.key, str(p.path))
                for p in photos
                if p.key not in self._pixmaps and p.load_error is None
            ]
        )

    def _thumbnail_loaded(self, key: str, image: QImage) -> None:
        row = self.session.row_of(key)
        if row is None:
            return
        self._pixmaps[key] = QPixmap.fromImage(image)
        self.item(row, THUMB_COLUMN).setData(self._pixmaps[key], Qt.ItemDataRole.DecorationRole)

    def _thumbnail_failed(self, key: str, message: str) -> None:
        self.session.set_load_error(key, message)

    # -- SessionListener -------------------------------------------------------------------
    def photos_about_to_be_added(self, first: int, last: int) -> None:
        pass

    def photos_added(self) -> None:
        for row in range(self.rowCount(), len(self.session)):
            self._append(self.session.photos[row], row)

    def photos_changed(self, rows: Sequence[int] | None) -> None:
        for row in range(len(self.session)) if rows is None else rows:
            self._fill(row)

    def photos_about_to_be_reset(self) -> None:
        pass

    def photos_reset(self) -> None:
        keys = set(self.session.keys())
        self._pixmaps = {k: v for k, v in self._pixmaps.items() if k in keys}
        self.removeRows(0, self.rowCount())
        self._shown = []
        self.photos_added()


class PhotoFilterProxy(QSortFilterProxyModel):
    """Filters rows by status and by a piece of the file name; sorts with :data:`SORT_ROLE`."""

    def __init__(self, model: PhotoTableModel, parent=None) -> None:
        super().__init__(parent)
        self.setSourceModel(model)
        self.setSortRole(SORT_ROLE)
        self.setFilterRole(FILTER_ROLE)
        self.setFilterKeyColumn(THUMB_COLUMN)
        self._states: set[PhotoState] | None = None
        self._text = ""

    def set_states(self, states: set[PhotoState] | None) -> None:
        self._states = states
        self._update()

    def set_text(self, text: str) -> None:
        self._text = text.strip()
        self._update()

    def _update(self) -> None:
        states = ".*" if self._states is None else "|".join(s.name for s in self._states)
        pattern = f"^(?:{states})\\|.*{re.escape(self._text)}"
        option = QRegularExpression.PatternOption.CaseInsensitiveOption
        self.setFilterRegularExpression(QRegularExpression(pattern, option))


class PhotoListView(QWidget):
    """Filter bar and table; emits the selected keys and the current photo's key."""

    selection_changed = Signal(list, object)  # keys selected (in view order), current key or None

    def __init__(self, model: PhotoTableModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = PhotoFilterProxy(model, self)
        self.filter_box = QComboBox(self)
        self.filter_box.addItems(list(FILTERS))
        self.filter_box.currentTextChanged.connect(lambda t: self.proxy.set_states(FILTERS[t]))
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter by name")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_text)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        size = model.thumbnails.size
        self.table.setIconSize(QSize(size, size))
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(size + 6)
        rows.hide()
        columns = self.table.horizontalHeader()
        columns.setSectionResizeMode(THUMB_COLUMN, QHeaderView.ResizeMode.Fixed)
        columns.resizeSection(THUMB_COLUMN, size + 10)
        columns.resizeSection(NAME_COLUMN, 130)
        columns.resizeSection(STATUS_COLUMN, 160)
        columns.setStretchLastSection(True)
        columns.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self._selection_timer = QTimer(self, singleShot=True, interval=0)
        self._selection_timer.timeout.connect(self._emit_selection)
        # (the lambdas drop the signals' arguments: QTimer.start(int) would take one as msec)
        self.table.selectionModel().selectionChanged.connect(
            lambda *_: self._selection_timer.start()
        )
        self.table.selectionModel().currentRowChanged.connect(
            lambda *_: self._selection_timer.start()
        )
        self._thumbs_timer = QTimer(self, singleShot=True, interval=0)
        self._thumbs_timer.timeout.connect(self._request_visible_thumbnails)
        self.table.verticalScrollBar().valueChanged.connect(lambda *_: self._thumbs_timer.start())
        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.layoutChanged,
            self.proxy.modelReset,
        ):
            signal.connect(lambda *_: self._thumbs_timer.start())
        self.empty = QLabel(EMPTY_TEXT, self.table.viewport())
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setEnabled(False)  # greyed: a hint, not content
        p = self.proxy
        for signal in (p.rowsInserted, p.rowsRemoved, p.modelReset, p.layoutChanged):
            signal.connect(lambda *_: self._show_empty())
        bar = QHBoxLayout()
        bar.addWidget(self.filter_box)
        bar.addWidget(self.search, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._thumbs_timer.start()
        self._show_empty()

    def _show_empty(self) -> None:
        """The hint over an empty list: how to add photos, or that the filter hides them."""
        empty = self.proxy.rowCount() == 0
        self.empty.setVisible(empty)
        if empty:
            hidden = self.model.rowCount() > 0
            self.empty.setText(FILTERED_TEXT if hidden else EMPTY_TEXT)
            self.empty.setGeometry(self.table.viewport().rect().adjusted(12, 12, -12, -12))

    def _request_visible_thumbnails(self) -> None:
        """Ask for the thumbnails of the rows on screen, and a few beyond."""
        count = self.proxy.rowCount()
        if count == 0 or not self.isVisible():
            return
        top = self.table.rowAt(0)
        bottom = self.table.rowAt(self.table.viewport().height() - 1)
        top = 0 if top < 0 else top
        bottom = count - 1 if bottom < 0 else bottom
        rows = range(max(0, top - _PREFETCH_ROWS), min(count, bottom + _PREFETCH_ROWS + 1))
        source = [self.proxy.mapToSource(self.proxy.index(r, 0)).row() for r in rows]
        self.model.request_thumbnails(source)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self._thumbs_timer.start()

    def selected_keys(self) -> list[str]:
        rows = self.table.selectionModel().selectedRows()
        rows = sorted(rows, key=lambda i: i.row())
        return [i.data(KEY_ROLE) for i in rows]

    def current_key(self) -> str | None:
        index = self.table.selectionModel().currentIndex()
        if index.isValid() and self.table.selectionModel().isRowSelected(index.row()):
            return index.siblingAtColumn(0).data(KEY_ROLE)
        keys = self.selected_keys()
        return keys[0] if keys else None

    def select_keys(self, keys: Sequence[str], current: str | None = None) -> None:
        """Select these photos (showing all photos again if the filter hides them)."""
        if any(not self._proxy_index(k).isValid() for k in keys):
            self.filter_box.setCurrentIndex(0)
            self.search.clear()
        selection = QItemSelection()
        for index in map(self._proxy_index, keys):
            if index.isValid():
                selection.select(index, index.siblingAtColumn(len(HEADERS) - 1))
        sm = self.table.selectionModel()
        flags = QItemSelectionModel.SelectionFlag
        focus = self._proxy_index(current if current is not None else (keys[0] if keys else ""))
        if focus.isValid():
            sm.setCurrentIndex(focus, flags.NoUpdate)
            self.table.scrollTo(focus)
        sm.select(selection, flags.ClearAndSelect | flags.Rows)

    def _proxy_index(self, key: str) -> QModelIndex:
        row = self.model.session.row_of(key)
        if row is None:
            return QModelIndex()
        return self.proxy.mapFromSource(self.model.index(row, 0))

    def _emit_selection(self, *_args) -> None:
        self.selection_changed.emit(self.selected_keys(), self.current_key())
