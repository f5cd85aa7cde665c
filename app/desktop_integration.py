"""The app on the desktop: ``locdiff-app --install-desktop`` and ``--uninstall-desktop``.

Linux (freedesktop): the ``.desktop`` entry (its ``Exec`` this installation's ``locdiff-app``,
``%F`` for the photos and folders a file manager opens with it), the icon in every hicolor size
and as SVG, and the AppStream metainfo, under ``$XDG_DATA_HOME`` (``~/.local/share``); the
entry's ``MimeType`` puts *LocDiff Studio* in the file manager's *Open with* for JPEG, HEIC,
TIFF, PNG, WebP and folders, without making it the default for any of them. The menus' caches
are refreshed when their tools (``update-desktop-database``, ``gtk-update-icon-cache``) exist.

macOS: a small ``LocDiff Studio.app`` in ``~/Applications`` whose executable starts this
installation's ``locdiff-app``. Windows: a Start-menu shortcut (made through PowerShell's
``WScript.Shell``).

Every run writes only files whose content differs (a second run changes nothing) and records
what it wrote in a manifest beside the app's data; uninstalling removes exactly those files and
the folders it left empty. Qt-free: it runs before any window.
"""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import locdiff_resources as res

APP_NAME = "LocDiff Studio"
MANIFEST = "desktop-files.json"
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")  # the desktop entry spec's characters that need quotes
MAC_DOCUMENT_TYPES = ("public.jpeg", "public.heic", "public.heif", "public.tiff", "public.png",
                      "org.webmproject.webp", "public.folder")  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One file the integration touched: ``action`` is wrote, unchanged or removed."""

    action: str
    path: Path

    def __str__(self) -> str:
        return f"{self.action:<9} {self.path}"


def executable() -> Path:
    """This installation's ``locdiff-app`` (beside the running Python, as pip installs it)."""
    folder = Path(sys.executable).parent
    for name in ("locdiff-app", "locdiff-app.exe"):
        if (folder / name).is_file():
            return (folder / name).absolute()
    found = shutil.which("locdiff-app")
    if found:
        return Path(found).absolute()
    raise ValueError(
        f"no locdiff-app next to {sys.executable}: install LocDiff Studio with pip "
        "(pip install locdiff, or pip install -e . in a checkout) and run this again"
    )


def exec_argument(value: str) -> str:
    """``value`` as one argument of a desktop entry's ``Exec`` key: quoted where the spec says,
    and backslashes doubled for the string escape the spec applies before the quoting."""
    if value and not (_RESERVED & set(value)):
        return value
    quoted = "".join("\\" + c if c in '"`$\\' else c for c in value)
    return '"' + quoted.replace("\\", "\\\\") + '"'


def desktop_entry(exe: Path) -> str:
    """The packaged entry with ``Exec`` and ``TryExec`` set to ``exe``."""
    lines = []
    for line in res.DESKTOP_ENTRY.read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = f"Exec={exec_argument(str(exe))} %F"
        elif line.startswith("TryExec="):
            line = f"TryExec={str(exe).replace(chr(92), chr(92) * 2)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def linux_files(exe: Path) -> dict[str, bytes]:
    """What goes under ``$XDG_DATA_HOME``: relative path -> content."""
    files = {f"applications/{res.APP_ID}.desktop": desktop_entry(exe).encode("utf-8")}
    for size in res.PNG_SIZES:
        files[f"icons/hicolor/{size}x{size}/apps/{res.APP_ID}.png"] = res.icon_png(
            size
        ).read_bytes()
    files[f"icons/hicolor/scalable/apps/{res.APP_ID}.svg"] = res.ICON_SVG.read_bytes()
    files[f"metainfo/{res.APP_ID}.metainfo.xml"] = res.METAINFO.read_bytes()
    return files


def macos_files(exe: Path) -> dict[str, bytes]:
    """What goes in ``~/Applications``: relative path -> content (the ``.app`` bundle)."""
    app = f"{APP_NAME}.app/Contents"
    info = {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleIdentifier": res.APP_ID,
        "CFBundleExecutable": "locdiff-studio",
        "CFBundleIconFile": res.ICON_ICNS.name,
        "CFBundlePackageType": "APPL",
        "CFBundleShortVersionString": _version(),
        "LSMinimumSystemVersion": "11.0",
        "NSHighResolutionCapable": True,
        "CFBundleDocumentTypes": [
            {"CFBundleTypeRole": "Editor", "LSItemContentTypes": list(MAC_DOCUMENT_TYPES)}
        ],
    }
    launcher = f'#!/bin/sh\nexec {_sh_quote(str(exe))} "$@"\n'
    return {
        f"{app}/Info.plist": plistlib.dumps(info),
        f"{app}/MacOS/locdiff-studio": launcher.encode("utf-8"),
        f"{app}/Resources/{res.ICON_ICNS.name}": res.ICON_ICNS.read_bytes(),
    }


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _version() -> str:
    from locdiff_core import __version__

    return __version__


def _write_if_changed(path: Path, data: bytes, executable_file: bool = False) -> Change:
    if path.is_file() and path.read_bytes() == data:
        return Change("unchanged", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if executable_file:
            os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Change("wrote", path)


def _manifest_path(record_dir: Path) -> Path:
    return record_dir / MANIFEST


def install_files(
    root: Path, files: dict[str, bytes], record_dir: Path, executables: tuple[str, ...] = ()
) -> list[Change]:
    """Write ``files`` under ``root`` (only those that differ) and record them."""
    changes = [
        _write_if_changed(root / rel, data, rel in executables) for rel, data in files.items()
    ]
    record = {"root": str(root), "files": sorted(files)}
    text = json.dumps(record, indent=1).encode("utf-8")
    manifest = _write_if_changed(_manifest_path(record_dir), text)
    return [*changes, manifest]


def uninstall_files(record_dir: Path) -> list[Change]:
    """Remove what :func:`install_files` recorded in ``record_dir`` (and folders left empty)."""
    manifest = _manifest_path(record_dir)
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
        root, names = Path(record["root"]), list(record["files"])
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{manifest}: not a record of the desktop integration ({exc})") from None
    changes = []
    for name in names:
        path = root / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            changes.append(Change("removed", path))
        parent = path.parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    manifest.unlink()
    changes.append(Change("removed", manifest))
    return changes


def xdg_data_home() -> Path:
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".local/share"


def record_folder() -> Path:
    """Where the manifest lives: the app's per-user data folder."""
    from app.model.settings import data_dir

    return data_dir()


def refresh_linux_caches(data_home: Path) -> list[str]:
    """Ask the desktop to read the entry and icons; the tools that were not there. The icon
    cache is refreshed only where one exists already: a user's hicolor folder usually has none,
    and a cache made here would hide icons other programs add there later without one."""
    missing = []
    hicolor = data_home / "icons" / "hicolor"
    tools = [("update-desktop-database", [str(data_home / "applications")])]
    if (hicolor / "icon-theme.cache").is_file():
        tools.append(("gtk-update-icon-cache", ["-f", "-t", "-q", str(hicolor)]))
    for tool, args in tools:
        path = shutil.which(tool)
        if path is None:
            missing.append(tool)
            continue
        subprocess.run([path, *args], capture_output=True, timeout=60, check=False)
    return missing


def install(platform: str = sys.platform) -> list[Change]:
    """Integrate this installation with the desktop of ``platform``; what it did."""
    exe = executable()
    if platform.startswith("linux") or platform.startswith("freebsd"):
        home = xdg_data_home()
        changes = install_files(home, linux_files(exe), record_folder())
        if any(c.action == "wrote" for c in changes):
            refresh_linux_caches(home)
        return changes
    if platform == "darwin":
        apps = Path.home() / "Applications"
        launcher = f"{APP_NAME}.app/Contents/MacOS/locdiff-studio"
        return install_files(apps, macos_files(exe), record_folder(), (launcher,))
    if platform == "win32":
        return [_windows_shortcut(exe)]
    raise ValueError(f"no desktop integration for {platform}: start it with {exe}")


def uninstall(platform: str = sys.platform) -> list[Change]:
    """Undo :func:`install`: remove exactly what it wrote."""
    if platform == "win32":
        link = _start_menu() / f"{APP_NAME}.lnk"
        if link.is_file():
            link.unlink()
            return [Change("removed", link)]
        return []
    changes = uninstall_files(record_folder())
    if changes and (platform.startswith("linux") or platform.startswith("freebsd")):
        home = xdg_data_home()
        refresh_linux_caches(home)
        applications = home / "applications"
        cache = applications / "mimeinfo.cache"
        if cache.is_file() and not any(p.suffix == ".desktop" for p in applications.rglob("*")):
            cache.unlink()  # the cache of no entries at all: the one it had was ours
            changes.append(Change("removed", cache))
            if not any(applications.iterdir()):
                applications.rmdir()
    return changes


def _start_menu() -> Path:
    appdata = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
    return Path(appdata) / "Microsoft" / "Windows" / "Start Menu" / "Programs"


def _windows_shortcut(exe: Path) -> Change:
    link = _start_menu() / f"{APP_NAME}.lnk"
    script = (
        "$s = (New-Object -ComObject WScript.Shell).CreateShortcut($env:LOCDIFF_LINK); "
        "$s.TargetPath = $env:LOCDIFF_EXE; $s.IconLocation = $env:LOCDIFF_ICON; "
        "$s.Description = 'Find where a photo was taken'; $s.Save()"
    )
    env = {**os.environ, "LOCDIFF_LINK": str(link), "LOCDIFF_EXE": str(exe),
           "LOCDIFF_ICON": str(res.ICON_ICO)}  # fmt: skip
    link.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["powershell", "-NoProfile", "-NonInteractive", "-Command", script],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise ValueError(f"the Start-menu shortcut could not be made: {done.stderr.strip()}")
    return Change("wrote", link)


def run(uninstalling: bool) -> int:
    """The command line's ``--install-desktop`` / ``--uninstall-desktop``: prints each file."""
    try:
        changes = uninstall() if uninstalling else install()
    except (OSError, ValueError) as exc:
        print(f"locdiff-app: {exc}", file=sys.stderr)
        return 1
    for change in changes:
        print(change)
    if not changes:
        print("nothing to remove: the desktop integration is not installed")
    elif not uninstalling:
        print(f"{APP_NAME} is in the applications menu; it starts {executable()}")
    return 0
