"""``locdiff-app``: the LocDiff Studio window, and its screenshot mode for tests and docs.

``--help`` imports neither Qt nor torch (the README's first command runs it on machines without
a display); the window's modules are imported only when it opens. ``--version`` prints the
diagnostics summary of :mod:`app.diagnostics` without a window (Qt no further than QtCore, and
no torch).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from app.model.model_info import ModelState

TITLE = "LocDiff Studio"
EXIT_FAILED = 1
SETTLE_S = 1.0  # after the page has every pin: time for its compositor to draw a frame


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locdiff-app",
        description=(
            "LocDiff Studio: drag photos in and see where they were taken. Opens a window; "
            "for a headless check of the installation run `locdiff selfcheck`."
        ),
    )
    parser.add_argument(
        "--version",
        action="store_true",
        help="print what a bug report needs (versions, the model as configured, the folders) "
        "and exit",
    )
    parser.add_argument("photos", nargs="*", help="photos or folders to open")
    parser.add_argument(
        "--checkpoint",
        metavar="RUN_DIR",
        help="the model to predict with this time: a training run folder or a .safetensors file",
    )
    parser.add_argument(
        "--predict", action="store_true", help="predict every photo opened (needs a model)"
    )
    parser.add_argument(
        "--screenshot",
        metavar="OUT.png",
        type=Path,
        help="load the photos (and predict with --predict), save a PNG of the window, and exit",
    )
    desktop = parser.add_mutually_exclusive_group()
    desktop.add_argument(
        "--install-desktop",
        action="store_true",
        help="add LocDiff Studio to the desktop's applications menu and Open with (this "
        "installation's locdiff-app), print what was written, and exit",
    )
    desktop.add_argument(
        "--uninstall-desktop",
        action="store_true",
        help="remove exactly what --install-desktop wrote, and exit",
    )
    parser.add_argument(
        "--settings-dir",
        metavar="DIR",
        type=Path,
        help="read and save settings.json in DIR instead of the per-user folder",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=float,
        default=300.0,
        help="with --screenshot: give up after S seconds (default 300)",
    )
    return parser


def _prepare_environment(args: argparse.Namespace) -> None:
    if args.settings_dir is not None:
        from app.model.settings import CONFIG_ENV

        os.environ[CONFIG_ENV] = str(args.settings_dir)
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if args.screenshot is not None and headless and sys.platform.startswith("linux"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Chromium refuses to sandbox as root
        os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")


def create_window(args: argparse.Namespace | None = None, pipeline_factory=None):
    """The main window with the settings (and ``--checkpoint``) of ``args``, photos added."""
    import dataclasses

    from app.main_window import MainWindow
    from app.model.settings import load_settings

    settings, message = load_settings()
    if args is not None and args.checkpoint:
        settings = dataclasses.replace(settings, checkpoint=str(args.checkpoint))
    window = MainWindow(settings, settings_message=message, pipeline_factory=pipeline_factory)
    if args is not None:
        window.add_paths(args.photos)
    return window


class _Screenshot:
    """Waits for the list (and the predictions and the map), then grabs the window."""

    def __init__(self, window, out: Path, predict: bool, timeout_s: float) -> None:
        self.window, self.out, self.predict = window, out, predict
        self.deadline = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.stage = "loading"
        self.error: str | None = None
        self.job: int | None = None
        self.drawn_at = 0.0

    def step(self) -> bool:
        """Advance; True when finished (``self.error`` says whether it failed)."""
        w = self.window
        if time.monotonic() > self.deadline:
            self.error = f"timed out after {self.timeout_s:g} s while {self.stage}"
            return True
        if self.stage == "loading" and w.loading_done():
            self.stage = "predicting" if self.predict else "waiting for the map"
        if self.stage == "predicting":
            if w.model_state.unusable:
                self.error = f"cannot predict: {_plain(w.model_panel.text.text())}"
                return True
            if self.job is None and w.model_state is ModelState.READY:
                self.job = w.predict([p.key for p in w.session.photos]) or -1
            if self.job is not None and not w.predictor.busy:
                self.stage = "waiting for the map"
        settled = w.map.is_ready() and not w.tasks.busy and w.model_state is not ModelState.LOADING
        if self.stage == "waiting for the map" and settled:
            # the page runs our calls in order: once it answers this one it has every pin
            self.stage = "waiting for the map to draw"
            w.map.evaluate("window.locdiffState()", self._answered)
        if self.stage == "drawn" and time.monotonic() >= self.drawn_at + SETTLE_S:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            if not w.grab().save(str(self.out), "PNG"):
                self.error = f"could not write {self.out}"
            return True
        return False

    def _answered(self, _state) -> None:
        self.stage, self.drawn_at = "drawn", time.monotonic()


def _set_icon(app) -> None:
    """The application's icon (every window's) and its desktop entry's id (which the desktop
    uses to match the window to the menu entry and its icon)."""
    from PySide6.QtGui import QIcon

    import locdiff_resources as res

    icon = QIcon()
    for size in res.PNG_SIZES:
        icon.addFile(str(res.icon_png(size)))
    app.setWindowIcon(icon)
    app.setDesktopFileName(res.APP_ID)


def application_class():
    """The app's ``QApplication``: it also takes the photos and folders the system asks it to
    open (macOS sends them as file open events to the application, not as arguments, when they
    are dropped on the app or opened with it from the Finder) and hands each path to
    ``open_file``. An override of ``event`` sees only the application's own events (an
    application-wide event filter in Python would be called for every object's)."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    class StudioApplication(QApplication):
        open_file = None  # called with each path the system opens with the app

        def event(self, event) -> bool:
            if event.type() == QEvent.Type.FileOpen and event.file() and self.open_file:
                self.open_file(event.file())
                return True
            return super().event(event)

    return StudioApplication


def _plain(html: str) -> str:
    """The text of the model panel's rich text, for a terminal."""
    from PySide6.QtGui import QTextDocumentFragment

    return " ".join(QTextDocumentFragment.fromHtml(html).toPlainText().split())


def take_screenshot(window, out: Path, predict: bool = False, timeout_s: float = 300.0) -> int:
    """Show ``window``, wait until it has loaded (and predicted), save a PNG; an exit status."""
    from PySide6.QtCore import QEventLoop, QTimer

    window.show()
    shot = _Screenshot(window, out, predict, timeout_s)
    loop = QEventLoop()
    timer = QTimer(interval=50)
    timer.timeout.connect(lambda: shot.step() and loop.quit())
    timer.start()
    loop.exec()
    timer.stop()
    window.close()
    if shot.error:
        print(f"locdiff-app: {shot.error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"saved {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.install_desktop or args.uninstall_desktop:
        from app import desktop_integration

        return desktop_integration.run(uninstalling=args.uninstall_desktop)
    _prepare_environment(args)
    if args.version:  # no window: nothing here needs a display
        from app.diagnostics import configured_text

        print(configured_text())
        return 0
    from PySide6.QtWidgets import QApplication

    from app.map import map_page  # QtWebEngine must load before the QApplication exists

    app = QApplication.instance() or application_class()([sys.argv[0]])
    app.setApplicationName(TITLE)
    _set_icon(app)
    try:
        map_page.page_html()  # its script folders are checked before the window starts
    except ValueError as exc:  # an install the window cannot start with
        print(f"locdiff-app: {exc}", file=sys.stderr)
        return 2
    window = create_window(args)
    if hasattr(app, "open_file"):
        app.open_file = lambda path: window.add_paths([path])
    if args.screenshot is not None:
        return take_screenshot(window, args.screenshot, args.predict, args.timeout)
    window.show()
    if args.predict:
        window.predict_all()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
