"""Background threads run below the window's priority, so the window answers first.

The prediction worker, the loaders' pools and the tasks keep the CPU busy for as long as a
batch lasts; on a machine with as many busy threads as cores, the window's thread would wait
for a time slice behind them (stalls of 100-140 ms were measured on 2 cores). On Linux, where a
thread has its own nice value, :func:`lower_this_thread` raises the calling thread's by
:data:`NICE_STEP`; threads it starts afterwards (torch's and the SHDD kernel's) inherit it. On
Windows and macOS, Qt's thread priorities do the same (``QThread.Priority.LowPriority``, set
where the threads are made); on Linux those are a no-op for ordinary processes.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from PySide6.QtCore import QThread

NICE_STEP = 10  # CFS weighs a thread at nice +10 about 10x below one at +0
LOW = QThread.Priority.LowPriority
log = logging.getLogger(__name__)
_state = threading.local()


def lower_this_thread() -> None:
    """Run the calling thread (and those it starts from now on) below the window's thread.
    Once per thread; a refusal by the system is logged and ignored."""
    if getattr(_state, "lowered", False):
        return
    _state.lowered = True
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(
            os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + NICE_STEP)
        )
    except OSError as exc:
        log.debug("could not lower the priority of thread %d: %s", tid, exc)


def thread_nice(native_id: int) -> int | None:
    """A thread's nice value on Linux (None elsewhere): for tests and diagnostics."""
    if not sys.platform.startswith("linux"):
        return None
    return os.getpriority(os.PRIO_PROCESS, native_id)
