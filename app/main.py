"""``locdiff-app``: the LocDiff Studio window.

Until the desktop-app issue lands this opens a placeholder main window; it already parses the
command line the real app will keep.
"""

from __future__ import annotations

import argparse
import sys

from locdiff_core import __version__

TITLE = "LocDiff Studio"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locdiff-app",
        description=(
            "LocDiff Studio: drag photos in and see where they were taken. Opens a window; "
            "for a headless check of the installation run `locdiff selfcheck`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"locdiff-app {__version__}")
    parser.add_argument("photos", nargs="*", help="photos or folders to open")
    return parser


def create_window():
    """The main window (a placeholder until the app issue lands)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel, QMainWindow

    window = QMainWindow()
    window.setWindowTitle(TITLE)
    label = QLabel(
        f"{TITLE} {__version__}\n\nThe photo workspace arrives with the desktop-app issue.\n"
        "The SHDD core is ready: run `locdiff selfcheck` in a terminal."
    )
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    window.setCentralWidget(label)
    window.resize(900, 600)
    return window


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)  # photos are opened once the app issue lands
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = create_window()
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
