"""Work-arounds for bugs of the Qt binding, in one place."""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, QTimer

# PySide6 6.12 on Python 3.11 drops a reference to None (or True, False) each time a Python
# override of a Qt virtual returns it, and pyqtgraph paints through such overrides (about 60 per
# frame of the training curves): after minutes of live curves the count reaches zero and the
# interpreter aborts ("deallocating None"). Until the binding is fixed, the count is topped up
# here: at every redraw of the training curves, and every few seconds by start_constant_guard,
# because the density view paints the same way. It is raised in place (CPython's ob_refcnt), not
# by holding references, which would be dropped again when the interpreter exits and abort it
# then. Python 3.12 makes these objects immortal.
_FLOOR = 1 << 24


def keep_constants_alive() -> None:
    """Give None, True and False back the references the binding's leak took (CPython < 3.12)."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    for constant in (None, True, False):
        if sys.getrefcount(constant) < _FLOOR:
            ctypes.c_ssize_t.from_address(id(constant)).value += _FLOOR


def start_constant_guard(parent: QObject, interval_ms: int = 5000) -> QTimer | None:
    """Tops the counts up every ``interval_ms`` for as long as ``parent`` lives (Python 3.11)."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return None
    keep_constants_alive()
    timer = QTimer(parent)
    timer.timeout.connect(keep_constants_alive)
    timer.start(interval_ms)
    return timer
