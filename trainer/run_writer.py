"""What a run writes besides its checkpoints: ``train.log`` (echoed to stderr) and
``metrics.jsonl`` (see :mod:`trainer.train`); only the main process writes."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from locdiff_core.run_layout import LOG_FILE, METRICS_FILE


class RunWriter:
    """Everything a run writes besides the checkpoint; only the main process writes."""

    def __init__(self, out: Path, is_main: bool = True, echo: Callable[[str], None] | None = None):
        self.out, self.is_main = out, is_main
        self.echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        if is_main:
            out.mkdir(parents=True, exist_ok=True)

    def _append(self, name: str, line: str) -> None:
        with open(self.out / name, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def log(self, line: str, echo: bool = True) -> None:
        if self.is_main:
            self._append(LOG_FILE, f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}")
            if echo:
                self.echo(line)

    def metrics(self, record: dict) -> None:
        if self.is_main:
            self._append(METRICS_FILE, json.dumps(record))


def progress_bar(done: int, total: int, width: int = 30) -> str:
    frac = min(done / max(total, 1), 1.0)
    return "[" + "#" * round(frac * width) + "." * (width - round(frac * width)) + "]"
