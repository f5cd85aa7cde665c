"""The app on the desktop: --install-desktop writes the entry, icons and metainfo into the
user's XDG folders, a second run changes nothing, --uninstall-desktop removes exactly what it
wrote, and the entry's Exec line starts this installation's app; the window has the icon."""

import os
import plistlib
import shlex
import shutil
import subprocess
import sys

import pytest

import locdiff_resources as res
from app import desktop_integration as di
from app import main as app_main


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def _tree(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_install_twice_then_uninstall(xdg, capsys):
    foreign = xdg / "applications" / "other.desktop"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("[Desktop Entry]\nName=Other\n")
    assert app_main.main(["--install-desktop"]) == 0
    out = capsys.readouterr().out
    entry = xdg / "applications" / f"{res.APP_ID}.desktop"
    assert f"wrote     {entry}" in out and "is in the applications menu" in out
    for size in res.PNG_SIZES:
        png = xdg / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{res.APP_ID}.png"
        assert png.read_bytes() == res.icon_png(size).read_bytes()
    assert (xdg / "icons/hicolor/scalable/apps" / f"{res.APP_ID}.svg").is_file()
    assert (xdg / "metainfo" / f"{res.APP_ID}.metainfo.xml").is_file()
    text = entry.read_text(encoding="utf-8")
    exe = di.executable()
    assert (
        f"Exec={di.exec_argument(str(exe))} %F" in text
        and exe.parent == di.Path(sys.executable).parent
    )
    if shutil.which("desktop-file-validate"):
        done = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout
    if shutil.which("update-desktop-database"):  # Open with: the MIME cache names the entry
        cache = (xdg / "applications" / "mimeinfo.cache").read_text(encoding="utf-8")
        assert f"image/jpeg={res.APP_ID}.desktop" in cache.replace(";", "")

    before = _tree(xdg / "icons") | {entry: entry.stat().st_mtime_ns}
    assert app_main.main(["--install-desktop"]) == 0  # idempotent
    out = capsys.readouterr().out
    assert "wrote" not in out and out.count("unchanged") == len(di.linux_files(exe)) + 1
    assert (_tree(xdg / "icons") | {entry: entry.stat().st_mtime_ns}) == before

    assert app_main.main(["--uninstall-desktop"]) == 0
    out = capsys.readouterr().out
    assert out.count("removed") == len(di.linux_files(exe)) + 1  # and the manifest
    if shutil.which("update-desktop-database"):  # the other entry keeps the MIME cache
        assert (xdg / "applications" / "mimeinfo.cache").is_file()
    assert not entry.exists() and not (xdg / "icons" / "hicolor" / "16x16").exists()
    assert not (xdg / "metainfo").exists()
    assert foreign.is_file()  # never touched
    assert app_main.main(["--uninstall-desktop"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.display
def test_the_entry_exec_line_starts_this_app(xdg, tmp_path, samples):
    pytest.importorskip("PySide6.QtWebEngineWidgets", reason="QtWebEngine cannot load here")
    assert app_main.main(["--install-desktop"]) == 0
    entry = (xdg / "applications" / f"{res.APP_ID}.desktop").read_text(encoding="utf-8")
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    argv = [a.replace("\\\\", "\\") for a in shlex.split(exec_line.removeprefix("Exec="))]
    out = tmp_path / "shot.png"
    argv = [str(samples / "gps") if a == "%F" else a for a in argv]
    argv += ["--screenshot", str(out), "--settings-dir", str(tmp_path / "settings")]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file() and f"saved {out}" in done.stdout


@pytest.mark.parametrize(
    ("path", "written"),
    [
        ("/opt/venv/bin/locdiff-app", "/opt/venv/bin/locdiff-app"),
        ("/home/a b/venv/bin/locdiff-app", '"/home/a b/venv/bin/locdiff-app"'),
        ('/x/say "hi"/locdiff-app', '"/x/say \\\\"hi\\\\"/locdiff-app"'),
        ("/x/$HOME/app", '"/x/\\\\$HOME/app"'),
    ],
)
def test_exec_arguments_are_quoted_as_the_spec_says(path, written):
    assert di.exec_argument(path) == written


def test_the_mac_launcher_bundle(tmp_path):
    exe = tmp_path / "venv" / "bin" / "locdiff-app"
    files = di.macos_files(exe)
    info = plistlib.loads(files["LocDiff Studio.app/Contents/Info.plist"])
    assert (
        info["CFBundleIdentifier"] == res.APP_ID and info["CFBundleExecutable"] == "locdiff-studio"
    )
    assert "public.jpeg" in info["CFBundleDocumentTypes"][0]["LSItemContentTypes"]
    launcher = files["LocDiff Studio.app/Contents/MacOS/locdiff-studio"].decode()
    assert launcher == f"#!/bin/sh\nexec '{exe}' \"$@\"\n"
    changes = di.install_files(
        tmp_path / "Applications", files, tmp_path / "record",
        ("LocDiff Studio.app/Contents/MacOS/locdiff-studio",),
    )  # fmt: skip
    script = tmp_path / "Applications/LocDiff Studio.app/Contents/MacOS/locdiff-studio"
    assert os.access(script, os.X_OK) and {c.action for c in changes} == {"wrote"}
    removed = di.uninstall_files(tmp_path / "record")
    assert (
        len(removed) == len(files) + 1
        and not (tmp_path / "Applications").joinpath("LocDiff Studio.app").exists()
    )


def test_a_damaged_record_is_refused_by_name(tmp_path):
    (tmp_path / di.MANIFEST).write_text("not json")
    with pytest.raises(ValueError, match=r"desktop-files\.json: not a record"):
        di.uninstall_files(tmp_path)


@pytest.mark.display
def test_the_window_has_the_icon(qtbot, make_window):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    app_main._set_icon(app)
    window = make_window()
    icon = window.windowIcon()
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} >= {16, 32, 48, 256}
    assert app.desktopFileName() == res.APP_ID


_OPEN_EVENT = """
import sys
from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QFileOpenEvent
from app.main import application_class
app = application_class()([sys.argv[0]])
opened = []
app.open_file = opened.append
QCoreApplication.sendEvent(app, QFileOpenEvent(sys.argv[1]))
print(opened)
"""


@pytest.mark.display
def test_files_the_system_opens_with_the_app_go_to_the_window(tmp_path):
    photo = tmp_path / "a photo.jpg"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_EVENT, str(photo)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == repr([str(photo)])


def test_uninstall_leaves_no_cache_of_its_own(xdg, capsys):
    assert app_main.main(["--install-desktop"]) == 0
    assert app_main.main(["--uninstall-desktop"]) == 0
    assert not (xdg / "applications").exists()
    assert not [p for p in xdg.rglob("*") if p.is_file()]
