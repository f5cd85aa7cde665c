"""The Help menu: the keyboard shortcuts (read from the window's own actions, so they are never
out of date), how to use the app (the README's "Using the app", when it is installed beside the
package), and what the app is.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMainWindow,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
)

README = Path(__file__).resolve().parents[1] / "README.md"
USAGE_HEADING = "## Using the app"
ONLINE_DOCS = "the README of LocDiff Studio (its source repository)"


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


def about_text() -> str:
    try:
        version = metadata.version("locdiff")
    except metadata.PackageNotFoundError:
        version = "(not installed)"
    return (
        f"<b>LocDiff Studio</b> {version}<br>Finds where a photo was taken with LocDiffusion "
        "(Wang et al., <i>LocDiff: Identifying Locations on Earth by Diffusing in the Hilbert "
        "Space</i>, NeurIPS 2025), GeoCLIP and LocDiff-H, offline."
    )


def add_help_menu(window: QMainWindow, actions: dict[str, QAction]) -> dict[str, QAction]:
    """The Help menu of ``window``; returns its actions (``shortcuts``, ``usage``, ``about``)."""
    menu = window.menuBar().addMenu("&Help")
    made = {}
    for name, text, shortcut, show in (
        ("shortcuts", "Keyboard shortcuts", None, lambda: shortcuts_dialog(window, actions)),
        ("usage", "Using LocDiff Studio", QKeySequence.StandardKey.HelpContents, None),
        ("about", "About LocDiff Studio", None, None),
    ):
        action = QAction(text, window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        menu.addAction(action)
        made[name] = action
        if show is not None:
            action.triggered.connect(lambda _c=False, show=show: show().open())
    made["usage"].triggered.connect(lambda: usage_dialog(window).open())
    made["about"].triggered.connect(
        lambda: QMessageBox.about(window, "About LocDiff Studio", about_text())
    )
    return made
