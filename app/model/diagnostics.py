"""What a bug report needs to know about this installation: the versions, the machine, the
model and the folders, as ordered ``(label, value)`` rows and their plain text.

Qt-free and torch-free, and fast (``locdiff-app --version`` prints it): package versions come
from the installed packages' metadata, and torch's CUDA build from its ``torch/version.py``
read as text, so nothing here imports torch or Qt. What only a running torch or Qt knows (the
CUDA devices, Qt's runtime version) the caller adds as rows of its own
(:mod:`app.diagnostics`); so does the window, for the model it has loaded.
"""

from __future__ import annotations

import functools
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from app.model.model_info import engine_label
from app.model.settings import (
    Settings,
    cache_dir,
    data_dir,
    default_session_path,
    settings_path,
)
from locdiff_core import __version__
from locdiff_core.encoder_weights import default_cache_dir
from locdiff_core.photo.exiftool import exiftool_path

Row = tuple[str, str]  # (label, value)

NOT_INSTALLED = "not installed"
EXIFTOOL_TIMEOUT_S = 5.0
#: the packages whose versions a report lists: (label, distribution name)
PACKAGES = (
    ("open_clip", "open_clip_torch"),
    ("numpy", "numpy"),
    ("Pillow", "pillow"),
    ("pillow-heif", "pillow-heif"),
    ("PySide6", "PySide6"),
)
_BUILD_FIELD = re.compile(r"^(cuda|hip)\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def package_version(distribution: str) -> str:
    """The installed version of ``distribution``, or :data:`NOT_INSTALLED`."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def python_text() -> str:
    return f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})"


def platform_text() -> str:
    """The operating system, its release and the processor architecture."""
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]} ({platform.machine()})"
    text = platform.platform()
    if sys.platform.startswith("linux"):
        try:
            name = platform.freedesktop_os_release().get("PRETTY_NAME")
        except OSError:  # no /etc/os-release
            name = None
        if name:
            text = f"{name}, {text}"
    return text


def torch_build_text() -> str:
    """torch's version and what it was built for (``2.5.1+cu124, built for CUDA 12.4``; a
    CPU-only build says so), without importing torch."""
    version = package_version("torch")
    if version == NOT_INSTALLED:
        return version
    try:
        source = Path(str(metadata.distribution("torch").locate_file("torch/version.py")))
        fields = dict(_BUILD_FIELD.findall(source.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return version
    if "cuda" in fields:
        return f"{version}, built for CUDA {fields['cuda']}"
    if "hip" in fields:
        return f"{version}, built for ROCm (HIP {fields['hip']})"
    return f"{version}, a CPU-only build"


@functools.lru_cache(maxsize=4)
def _exiftool_version(program: str) -> str:
    try:
        done = subprocess.run(
            [program, "-ver"], capture_output=True, text=True, timeout=EXIFTOOL_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{program} (does not answer -ver: {exc})"
    answer = done.stdout.strip() or done.stderr.strip() or f"exit status {done.returncode}"
    return f"{answer} ({program})"


def exiftool_text() -> str:
    """exiftool's version and path, or that it is not there (``exiftool -ver``, asked once)."""
    program = exiftool_path()
    if program is None:
        return "not found (exiftool on PATH, or LOCDIFF_EXIFTOOL)"
    return _exiftool_version(program)


def installation_rows() -> list[Row]:
    """LocDiff Studio, Python, the platform, torch, the packages and exiftool."""
    rows = [
        ("LocDiff Studio", __version__),
        ("Python", python_text()),
        ("Platform", platform_text()),
        ("torch", torch_build_text()),
    ]
    rows += [(label, package_version(name)) for label, name in PACKAGES]
    rows.append(("exiftool", exiftool_text()))
    return rows


def configured_model_rows(settings: Settings, message: str | None = None) -> list[Row]:
    """The model, engine and device the settings name (what a window would load), and why some
    settings could not be used (``message`` of ``load_settings``)."""
    model = settings.checkpoint or "GeoCLIP (no checkpoint)"
    rows = [
        ("Model", f"{model}, as configured in settings"),
        ("Engine", f"{engine_label(settings.engine)}, as configured in settings"),
        ("Device", settings.device),
        ("Encoder weights", settings.encoder_weights or "the encoder weights cache"),
    ]
    if message:
        rows.append(("Settings problem", message))
    return rows


def folder_rows(session: Path | str | None = None) -> list[Row]:
    """The settings file, the data and cache folders, and ``session`` (default: the session the
    window opens with)."""
    return [
        ("Settings file", str(settings_path())),
        ("Data folder", str(data_dir())),
        ("Map tile cache", str(cache_dir())),
        ("Encoder weights cache", str(default_cache_dir())),
        ("Session file", str(session if session is not None else default_session_path())),
    ]


def summary_rows(
    model: Sequence[Row],
    *,
    torch_runtime: Sequence[Row] = (),
    qt_runtime: Sequence[Row] = (),
    session: Path | str | None = None,
) -> list[Row]:
    """Every row of a report: the installation (``torch_runtime`` after torch, ``qt_runtime``
    after PySide6), then ``model``, then the folders."""
    rows = []
    for row in installation_rows():
        rows.append(row)
        if row[0] == "torch":
            rows += torch_runtime
        elif row[0] == "PySide6":
            rows += qt_runtime
    return [*rows, *model, *folder_rows(session)]


def render(rows: Sequence[Row]) -> str:
    """The rows as aligned ``label: value`` lines (a value's own line breaks become spaces)."""
    width = max((len(label) for label, _ in rows), default=0) + 1
    return "\n".join(
        f"{label + ':':<{width}} {' '.join(str(value).split())}" for label, value in rows
    )
