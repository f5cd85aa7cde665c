"""A one-line progress bar with rate and ETA for the command line (on stderr).

On a terminal the line is redrawn in place (at most ten times a second); otherwise, e.g. in a
log file, a line is printed at every tenth of the way, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 24
_SETTLE_S = 0.5  # seconds before a rate and an ETA are shown


def _amount(n: float, unit: str) -> str:
    if unit != "bytes":
        return f"{int(n):,}"
    for scale, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= scale:
            return f"{n / scale:.1f} {suffix}"
    return f"{int(n)} B"


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """``bar(done, total)`` draws ``label  42.0% [###...] 420/1,000 files  35.2/s  ETA 0:00:16``."""

    def __init__(self, label: str, *, unit: str = "files", stream: TextIO | None = None) -> None:
        self.label, self.unit = label, unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_tenth = -1
        self._drawn = False

    def line(self, done: int, total: int) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        frac = min(done / total, 1.0) if total else 0.0
        bar = "#" * round(frac * _WIDTH) + "." * (_WIDTH - round(frac * _WIDTH))
        of = f"/{_amount(total, self.unit)}" if total else ""
        line = f"{self.label} {100 * frac:5.1f}% [{bar}] {_amount(done, self.unit)}{of} {self.unit}"
        if elapsed < _SETTLE_S and frac < 1.0:
            return line  # too early for a rate worth showing
        shown = _amount(rate, self.unit) if self.unit == "bytes" else f"{rate:.1f}"
        eta = f"  ETA {_clock((total - done) / rate)}" if total and rate > 0 else ""
        return f"{line}  {shown}/s{eta}"

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        finished = bool(total) and done >= total
        if self.tty:
            if finished or now - self._last_draw >= 0.1:
                self.stream.write("\r" + self.line(done, total) + "\033[K")
                self.stream.flush()
                self._last_draw, self._drawn = now, True
        else:
            tenth = int(10 * done / total) if total else 0
            if tenth > self._last_tenth:
                self.stream.write(self.line(done, total) + "\n")
                self.stream.flush()
                self._last_tenth = tenth
        if finished:
            self.close()

    def close(self) -> None:
        """End the redrawn line (call when stopping early)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class StageBars:
    """One :class:`ProgressBar` per stage name, for ``progress(stage, done, total)`` callbacks."""

    def __init__(self, stream: TextIO | None = None, units: dict[str, str] | None = None) -> None:
        self.stream = stream
        self.units = units or {}  # stage -> unit, "files" when not named
        self.bars: dict[str, ProgressBar] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.bars:
            for bar in self.bars.values():
                bar.close()
            unit = self.units.get(stage, "files")
            self.bars[stage] = ProgressBar(stage, unit=unit, stream=self.stream)
        self.bars[stage](done, total)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
