"""A persistent exiftool process (``exiftool -stay_open True -@ -``) for lossless writes.

exiftool (Debian ``libimage-exiftool-perl``) rewrites JPEG, TIFF, PNG, WebP and HEIC metadata
while keeping image data and maker notes intact. Starting Perl costs about 0.2 s, so one process
serves every request: arguments go to its standard input one per line, ``-execute`` runs them,
and the output ends with ``{ready}``. Requests are serialised with a lock, so one instance may be
shared between threads. When the program is missing, :func:`exiftool_path` returns ``None`` and
callers fall back to the built-in writer with a message saying so.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import threading
from pathlib import Path

_READY = "{ready}"


class ExiftoolError(RuntimeError):
    """exiftool refused a request; the message is exiftool's own."""


def exiftool_path() -> str | None:
    """The exiftool program on ``PATH`` (``LOCDIFF_EXIFTOOL`` overrides; ``""`` disables it)."""
    override = os.environ.get("LOCDIFF_EXIFTOOL")
    if override is not None:
        return shutil.which(override) if override else None
    return shutil.which("exiftool")


class Exiftool:
    """One long-lived exiftool process. Use :func:`shared` rather than building many."""

    def __init__(self, program: str | None = None) -> None:
        program = program or exiftool_path()
        if program is None:
            raise ExiftoolError(
                "exiftool is not installed; install it (Debian/Ubuntu: "
                "`apt-get install libimage-exiftool-perl`) or use the built-in writer"
            )
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [program, "-stay_open", "True", "-@", "-", "-common_args", "-charset", "filename=utf8"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )

    def execute(self, *args: str) -> str:
        """Run one exiftool command; returns its output (messages and warnings)."""
        for arg in args:
            if "\n" in arg or "\r" in arg:
                raise ValueError(f"exiftool arguments cannot contain line breaks: {arg!r}")
        with self._lock:
            if self._proc.poll() is not None:
                raise ExiftoolError(f"exiftool has exited (status {self._proc.returncode})")
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write("\n".join((*args, "-execute")) + "\n")
            self._proc.stdin.flush()
            lines = []
            for line in self._proc.stdout:
                if line.rstrip() == _READY:
                    break
                lines.append(line.rstrip("\n"))
            else:
                raise ExiftoolError("exiftool closed its output unexpectedly")
        return "\n".join(lines)

    def write_copy(self, src: Path, dst: Path, assignments: list[str]) -> None:
        """Write ``src`` with tag ``assignments`` (``-TAG=VALUE``) to the new file ``dst``."""
        out = self.execute("-n", "-m", "-o", str(dst), *assignments, str(src))
        errors = [ln for ln in out.splitlines() if ln.startswith("Error")]
        if errors or not dst.exists():
            raise ExiftoolError("; ".join(errors) or out.strip() or "exiftool wrote nothing")

    def close(self) -> None:
        with self._lock:
            if self._proc.poll() is None:
                assert self._proc.stdin is not None
                try:
                    self._proc.stdin.write("-stay_open\nFalse\n")
                    self._proc.stdin.flush()
                    self._proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    self._proc.kill()
                    self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()


_shared: dict[str, Exiftool] = {}
_shared_lock = threading.Lock()


def shared() -> Exiftool:
    """The process-wide exiftool instance, started on first use and closed at exit."""
    with _shared_lock:
        tool = _shared.get("tool")
        if tool is None or tool._proc.poll() is not None:
            tool = _shared["tool"] = Exiftool()
            atexit.register(tool.close)
        return tool


def position_assignments(lat: float, lon: float, alt: float | None) -> list[str]:
    """exiftool arguments that set the EXIF GPS position (altitude cleared when ``alt`` is None)."""
    args = [
        f"-GPS:GPSLatitude={abs(lat):.10f}",
        f"-GPS:GPSLatitudeRef={'N' if lat >= 0 else 'S'}",
        f"-GPS:GPSLongitude={abs(lon):.10f}",
        f"-GPS:GPSLongitudeRef={'E' if lon >= 0 else 'W'}",
    ]
    if alt is None:
        return [*args, "-GPS:GPSAltitude=", "-GPS:GPSAltitudeRef="]
    return [*args, f"-GPS:GPSAltitude={abs(alt):.3f}", f"-GPS:GPSAltitudeRef={1 if alt < 0 else 0}"]


REMOVE_ASSIGNMENTS = ["-GPS:all=", "-XMP-exif:GPS*="]
