"""How long the app's modules take to import before its window can open, and what they pull in.

Each row is a fresh interpreter (``--runs`` of them, the median and the range printed), timed
from its first import to the last; the heavy libraries a user waits for are listed when loaded.

    QT_QPA_PLATFORM=offscreen python benchmarks/startup.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from tables import print_table

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "open_clip", "scipy", "numba", "PIL", "PySide6.QtWebEngineWidgets")
TARGETS = {
    "the window (app.main_window)": "import app.main_window",
    "the Qt-free model (app.model.*)": "import app.model.session, app.model.exports",
    "the photo commands (locdiff_core.photo)": "import locdiff_core.photo.cli",
    "the trainer's command line (trainer.cli)": "import trainer.cli",
}
PROBE = """
import json, sys, time
t = time.perf_counter()
{statement}
seconds = time.perf_counter() - t
print(json.dumps({{"s": seconds, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def time_import(statement: str) -> dict:
    code = PROBE.format(statement=statement, heavy=HEAVY)
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per row (5)")
    args = parser.parse_args()

    def rows():
        for name, statement in TARGETS.items():
            runs = [time_import(statement) for _ in range(args.runs)]
            seconds = sorted(r["s"] for r in runs)
            yield (
                name,
                f"{statistics.median(seconds):.2f} s",
                f"{seconds[0]:.2f} to {seconds[-1]:.2f} s",
                ", ".join(runs[-1]["loaded"]) or "none of them",
            )

    load = os.getloadavg()[0]
    print_table(
        f"Import time before use ({args.runs} fresh interpreters each, load {load:.1f})",
        ["what", "median", "range", f"heavy libraries loaded (of {', '.join(HEAVY)})"],
        rows(),
    )


if __name__ == "__main__":
    main()
