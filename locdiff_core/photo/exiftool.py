"""A persistent exiftool process (``exiftool -stay_open True -@ -``) for lossless writes.

exiftool (Debian ``libimage-exiftool-perl``) rewrites JPEG, TIFF, PNG, WebP and HEIC metadata
while keeping image data and maker notes intact. Starting Perl costs about 0.2 s, so one process
serves every request: arguments go to its standard input one per line, ``-execute`` runs them,
and the output ends with ``{ready}``. Requests are serialised with a lock, so one instance may be
shared between threads. When the program is missing, :func:`exiftool_path` returns ``None`` and
callers fall back to the built-in writer with a message saying so.

The process starts on the first request, not when an :class:`Exiftool` is made, and ends with
:meth:`Exiftool.close` (registered with :mod:`atexit` for :func:`shared`). It must also end when
this process is killed, which exiftool does not do by itself: at the end of its input it polls
for more every 10 ms, forever. So on POSIX systems a small ``/bin/sh`` guard (:data:`_GUARD`)
starts it in a session of its own (a Ctrl-C in the terminal reaches only this process, which
finishes the current file) and waits on a pipe that only this process writes to; the system
closes that pipe however this process ends, and the guard then interrupts exiftool (which
removes its half-written output) and exits. On Windows exiftool is a plain child process.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO

_READY = "{ready}"
_OPTIONS = ("-stay_open", "True", "-@", "-", "-common_args", "-charset", "filename=utf8")

# Standard input: the requests, handed to exiftool through fd 3 (a background job's own
# standard input would be /dev/null);
# standard output: the replies, left to exiftool alone, so its end is seen as their end;
# standard error: the read end of a pipe only this process writes to, whose end means ours.
_GUARD = """
exec 3<&0 </dev/null
"$@" <&3 3<&- 2>&1 &
exec 3<&- >/dev/null
read _ <&2
kill -INT $! 2>/dev/null
wait
"""


class ExiftoolError(RuntimeError):
    """exiftool refused a request; the message is exiftool's own."""


def exiftool_path() -> str | None:
    """The exiftool program on ``PATH`` (``LOCDIFF_EXIFTOOL`` overrides; ``""`` disables it)."""
    override = os.environ.get("LOCDIFF_EXIFTOOL")
    if override is not None:
        return shutil.which(override) if override else None
    return shutil.which("exiftool")


class _Process:
    """One running exiftool: ``requests`` in, ``replies`` out, and what makes it end."""

    def __init__(self, program: str) -> None:
        command = [program, *_OPTIONS]
        self.life: IO[bytes] | None = None  # closing it ends the guard (POSIX)
        if os.name == "nt":
            self.proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        else:
            read_end, write_end = os.pipe()  # not inherited by other children
            try:
                self.proc = subprocess.Popen(
                    ["/bin/sh", "-c", _GUARD, "locdiff-exiftool-guard", *command],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=read_end,
                    start_new_session=True,
                )
            except BaseException:
                os.close(write_end)
                raise
            finally:
                os.close(read_end)
            self.life = open(write_end, "wb")  # noqa: SIM115 (closed in stop())
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.requests: IO[bytes] = self.proc.stdin
        self.replies: IO[bytes] = self.proc.stdout

    def stop(self) -> None:
        """Ask exiftool to finish, then make sure it and its guard have ended."""
        try:
            self.requests.write(b"-stay_open\nFalse\n")
            self.requests.flush()
        except OSError:
            pass
        for stream in (self.requests, self.life):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            if os.name == "nt":
                self.proc.kill()
            else:  # the guard and exiftool share a process group of their own
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.replies.close()


class Exiftool:
    """One long-lived exiftool process. Use :func:`shared` rather than building many."""

    def __init__(self, program: str | None = None) -> None:
        program = program or exiftool_path()
        if program is None:
            raise ExiftoolError(
                "exiftool is not installed; install it (Debian/Ubuntu: "
                "`apt-get install libimage-exiftool-perl`) or use the built-in writer"
            )
        self._program = program
        self._lock = threading.Lock()
        self._process: _Process | None = None

    @property
    def running(self) -> bool:
        """Whether the exiftool process has been started (and not closed)."""
        return self._process is not None

    def execute(self, *args: str) -> str:
        """Run one exiftool command (starting exiftool if needed); returns its output."""
        for arg in args:
            if "\n" in arg or "\r" in arg:
                raise ValueError(f"exiftool arguments cannot contain line breaks: {arg!r}")
        request = "\n".join((*args, "-execute")).encode("utf-8") + b"\n"
        with self._lock:
            if self._process is None:
                self._process = _Process(self._program)
            process = self._process
            try:
                process.requests.write(request)
                process.requests.flush()
                lines = []
                for raw in process.replies:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if line == _READY:
                        return "\n".join(lines)
                    lines.append(line)
            except OSError as exc:
                failure = f"exiftool stopped responding ({exc.strerror or exc})"
            else:
                failure = "exiftool exited unexpectedly"
            self._process = None  # the next request starts a fresh one
            process.stop()
        raise ExiftoolError(failure)

    def write_copy(self, src: Path, dst: Path, assignments: list[str]) -> None:
        """Write ``src`` with tag ``assignments`` (``-TAG=VALUE``) to the new file ``dst``."""
        out = self.execute("-n", "-m", "-o", str(dst), *assignments, str(src))
        errors = [_error_text(ln, src, dst) for ln in out.splitlines() if ln.startswith("Error")]
        if errors or not dst.exists():
            raise ExiftoolError("; ".join(errors) or out.strip() or "exiftool wrote nothing")

    def close(self) -> None:
        """End the exiftool process (a later request starts a new one)."""
        with self._lock:
            process, self._process = self._process, None
            if process is not None:
                process.stop()


def _error_text(line: str, src: Path, dst: Path) -> str:
    """An exiftool error line without its ``Error:`` prefix and the file name it ends with
    (the message names the file already): ``Not a valid JPG (looks more like a TXT)``."""
    text = line.removeprefix("Error:").strip()
    for name in (str(src), str(dst)):
        text = text.removesuffix(f" - {name}")
    return text


_shared: dict[str, Exiftool] = {}
_shared_lock = threading.Lock()


def shared() -> Exiftool:
    """The process-wide instance; its process starts on first use and ends at exit."""
    with _shared_lock:
        tool = _shared.get("tool")
        if tool is None:
            tool = _shared["tool"] = Exiftool()
            atexit.register(tool.close)
        return tool


def close_shared() -> None:
    """End the process of :func:`shared`, if one was started."""
    with _shared_lock:
        tool = _shared.get("tool")
    if tool is not None:
        tool.close()


def position_assignments(
    lat: float, lon: float, alt: float | None, *, xmp: bool = False
) -> list[str]:
    """exiftool arguments that set the EXIF GPS position (altitude cleared when ``alt`` is
    None); with ``xmp``, the XMP ``exif:GPS*`` position too (for files whose XMP holds one)."""
    args = [
        f"-GPS:GPSLatitude={abs(lat):.10f}",
        f"-GPS:GPSLatitudeRef={'N' if lat >= 0 else 'S'}",
        f"-GPS:GPSLongitude={abs(lon):.10f}",
        f"-GPS:GPSLongitudeRef={'E' if lon >= 0 else 'W'}",
    ]
    if alt is None:
        args += ["-GPS:GPSAltitude=", "-GPS:GPSAltitudeRef="]
    else:
        args += [f"-GPS:GPSAltitude={abs(alt):.3f}", f"-GPS:GPSAltitudeRef={1 if alt < 0 else 0}"]
    if xmp:
        args += ["-XMP-exif:GPS*=", f"-XMP-exif:GPSLatitude={lat:.10f}"]
        args += [f"-XMP-exif:GPSLongitude={lon:.10f}"]
        if alt is not None:
            args += [f"-XMP-exif:GPSAltitude={abs(alt):.3f}"]
            args += [f"-XMP-exif:GPSAltitudeRef={1 if alt < 0 else 0}"]
    return args


REMOVE_ASSIGNMENTS = ["-GPS:all=", "-XMP-exif:GPS*="]
