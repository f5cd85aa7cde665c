"""The Help menu: the keyboard shortcuts (read from the window's own actions, so they are never
out of date), how to use the app (the README's "Using the app", when it is installed beside the
package), what the app is (About: versions, model, engine and folders, from
:mod:`app.diagnostics`), and the full diagnostics summary copied for a bug report.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.diagnostics import window_rows
from app.model.diagnostics import Row, render

README = Path(__file__).resolve().parents[1] / "README.md"
USAGE_HEADING = "## Using the app"
ONLINE_DOCS = "the README of LocDiff Studio (its source repository)"
#: the rows of the diagnostics summary that About shows (Copy diagnostics copies them all)
ABOUT_ROWS = (
    "torch",
    "CUDA",
    "MPS",
    "open_clip",
    "PySide6",
    "Qt",
    "Model",
    "Model state",
    "Engine",
    "Settings file",
    "Data folder",
    "Map tile cache",
    "Encoder weights cache",
    "Session file",
)
ICON_PX = 64
ABOUT_WIDTH = 720


def shortcut_rows(actions: dict[str, QAction]) -> list[tuple[str, str]]:
    """``(action, shortcut)`` for every action that has a shortcut, in menu order."""
    rows = []
    for action in actions.values():
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys:
            rows.append((action.text().replace("&", "").removesuffix("…"), keys))
    return rows


def usage_text(readme: Path = README) -> str:
    """The README's "Using the app" section (Markdown), or where to find it."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return f"The full guide is in {ONLINE_DOCS}."
    start = text.find(USAGE_HEADING)
    if start < 0:
        return f"The full guide is in {ONLINE_DOCS}."
    end = text.find("\n## ", start + len(USAGE_HEADING))
    return text[start : end if end > 0 else len(text)]


def _dialog(window: QMainWindow, title: str, body) -> QDialog:
    dialog = QDialog(window)
    dialog.setWindowTitle(title)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(body)
    layout.addWidget(buttons)
    dialog.resize(640, 560)
    return dialog


def shortcuts_dialog(window: QMainWindow, actions: dict[str, QAction]) -> QDialog:
    rows = shortcut_rows(actions)
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Action", "Shortcut"])
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    for row, (name, keys) in enumerate(rows):
        table.setItem(row, 0, QTableWidgetItem(name))
        table.setItem(row, 1, QTableWidgetItem(keys))
    table.resizeColumnToContents(0)
    return _dialog(window, "Keyboard shortcuts", table)


def usage_dialog(window: QMainWindow) -> QDialog:
    browser = QTextBrowser()
    browser.setMarkdown(usage_text())
    browser.setOpenExternalLinks(False)
    return _dialog(window, "Using LocDiff Studio", browser)


def about_text(rows: Sequence[Row]) -> str:
    """About's rich text: the version, what the app does, and the :data:`ABOUT_ROWS` of the
    diagnostics ``rows``."""
    values = dict(rows)
    table = "".join(
        f"<tr><td><b>{html.escape(label)}</b>&nbsp;&nbsp;</td><td>{html.escape(values[label])}"
        "</td></tr>"
        for label in ABOUT_ROWS
        if label in values
    )
    return (
        f"<h3>LocDiff Studio {html.escape(values.get('LocDiff Studio', ''))}</h3>"
        "<p>Finds where a photo was taken with LocDiffusion (Wang et al., <i>LocDiff: "
        "Identifying Locations on Earth by Diffusing in the Hilbert Space</i>, NeurIPS 2025), "
        "GeoCLIP and LocDiff-H, offline.</p>"
        f"<table>{table}</table>"
        "<p>Help &gt; Copy diagnostics copies all of this, and more, for a bug report.</p>"
    )


def about_dialog(window: QMainWindow) -> QDialog:
    """The version, model, engine and folders in selectable text, beside the app's icon."""
    body = QWidget()
    row = QHBoxLayout(body)
    icon = QApplication.windowIcon()
    if not icon.isNull():
        picture = QLabel()
        picture.setPixmap(icon.pixmap(ICON_PX, ICON_PX))
        row.addWidget(picture, 0, Qt.AlignmentFlag.AlignTop)
    text = QLabel(about_text(window_rows(window)))
    text.setObjectName("about-text")
    text.setTextFormat(Qt.TextFormat.RichText)
    text.setWordWrap(True)
    text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    row.addWidget(text, 1)
    dialog = _dialog(window, "About LocDiff Studio", body)
    dialog.resize(ABOUT_WIDTH, dialog.layout().heightForWidth(ABOUT_WIDTH))
    return dialog


def copy_diagnostics(window: QMainWindow) -> str:
    """Put the full diagnostics summary on the clipboard (and say so); returns it."""
    text = render(window_rows(window))
    QGuiApplication.clipboard().setText(text)
    window.notify("diagnostics copied to the clipboard: paste them into the bug report")
    return text


def add_help_menu(window: QMainWindow, actions: dict[str, QAction]) -> dict[str, QAction]:
    """The Help menu of ``window``; returns its actions (``shortcuts``, ``usage``, ``about``,
    ``diagnostics``)."""
    menu = window.menuBar().addMenu("&Help")
    made = {}
    for name, text, shortcut, show in (
        ("shortcuts", "Keyboard shortcuts", None, lambda: shortcuts_dialog(window, actions)),
        ("usage", "Using LocDiff Studio", QKeySequence.StandardKey.HelpContents, None),
        ("about", "About LocDiff Studio", None, lambda: about_dialog(window)),
        ("diagnostics", "Copy diagnostics", None, None),
    ):
        action = QAction(text, window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        menu.addAction(action)
        made[name] = action
        if show is not None:
            action.triggered.connect(lambda _c=False, show=show: show().open())
    made["usage"].triggered.connect(lambda: usage_dialog(window).open())
    made["diagnostics"].triggered.connect(lambda: copy_diagnostics(window))
    return made
