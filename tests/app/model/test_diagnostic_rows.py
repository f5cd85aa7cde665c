"""The diagnostics rows without Qt or torch: the installed versions (as their metadata says), the
platform, torch's CUDA build read from its files, exiftool, the model as configured, and the
folders (moved by the environment overrides, which tests/app/conftest.py points at tmp_path)."""

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import pytest

import locdiff_core
from app.model import diagnostics
from app.model.diagnostics import (
    NOT_INSTALLED,
    PACKAGES,
    configured_model_rows,
    folder_rows,
    installation_rows,
    render,
    summary_rows,
    torch_build_text,
)
from app.model.settings import Settings


def test_the_versions_are_the_installed_ones():
    rows = dict(installation_rows())
    assert rows["LocDiff Studio"] == locdiff_core.__version__
    assert rows["Python"].startswith(platform.python_version())
    assert sys.executable in rows["Python"]
    assert platform.machine() in rows["Platform"]
    for label, distribution in PACKAGES:
        try:
            expected = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            expected = NOT_INSTALLED
        assert rows[label] == expected
    assert rows["torch"].startswith(metadata.version("torch"))
    assert list(rows)[:4] == ["LocDiff Studio", "Python", "Platform", "torch"]


@pytest.mark.parametrize(
    ("version_py", "said"),
    [
        ("cuda: Optional[str] = '12.4'\nhip: Optional[str] = None\n", "built for CUDA 12.4"),
        ("cuda: Optional[str] = None\nhip: Optional[str] = None\n", "a CPU-only build"),
        ("cuda = None\nhip: Optional[str] = '6.2.41133'\n", "built for ROCm (HIP 6.2.41133)"),
    ],
)
def test_the_torch_build_is_read_without_importing_torch(monkeypatch, tmp_path, version_py, said):
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "version.py").write_text(version_py, encoding="utf-8")

    class Dist:
        def locate_file(self, name):
            return tmp_path / name

    monkeypatch.setattr(diagnostics.metadata, "distribution", lambda name: Dist())
    monkeypatch.setattr(diagnostics, "package_version", lambda name: "9.9.9")
    assert torch_build_text() == f"9.9.9, {said}"


@pytest.mark.skipif(os.name == "nt", reason="the stand-in exiftool is a shell script")
def test_exiftool_is_named_with_its_version(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCDIFF_EXIFTOOL", "")
    assert dict(installation_rows())["exiftool"].startswith("not found")
    tool = tmp_path / "exiftool"
    tool.write_text("#!/bin/sh\necho 12.34\n", encoding="utf-8")
    tool.chmod(0o755)
    monkeypatch.setenv("LOCDIFF_EXIFTOOL", str(tool))
    assert dict(installation_rows())["exiftool"] == f"12.34 ({tool})"
    slow = tmp_path / "slow-exiftool"
    slow.write_text("#!/bin/sh\nexec sleep 5\n", encoding="utf-8")
    slow.chmod(0o755)
    monkeypatch.setenv("LOCDIFF_EXIFTOOL", str(slow))
    monkeypatch.setattr(diagnostics, "EXIFTOOL_TIMEOUT_S", 0.2)
    assert "does not answer -ver" in diagnostics.exiftool_text()


def test_the_folders_follow_the_environment(tmp_path):
    rows = dict(folder_rows())
    assert rows == {
        "Settings file": str(tmp_path / "config" / "settings.json"),
        "Data folder": str(tmp_path / "data"),
        "Map tile cache": str(tmp_path / "cache"),
        "Encoder weights cache": str(tmp_path / "cache"),
        "Session file": str(tmp_path / "data" / "session.sqlite"),
    }
    assert dict(folder_rows(Path("/elsewhere/work.locdiff-session")))["Session file"] == str(
        Path("/elsewhere/work.locdiff-session")
    )


def test_the_configured_model_and_engine():
    rows = dict(configured_model_rows(Settings(checkpoint="/runs/a", engine="hybrid")))
    assert rows["Model"] == "/runs/a, as configured in settings"
    assert rows["Engine"] == "LocDiff-H (hybrid), as configured in settings"
    rows = dict(configured_model_rows(Settings(), "settings.json: num_samples was bad"))
    assert rows["Model"].startswith("GeoCLIP") and rows["Engine"].startswith("Auto,")
    assert rows["Settings problem"] == "settings.json: num_samples was bad"


def test_the_runtime_rows_sit_beside_their_packages_and_the_folders_come_last():
    rows = summary_rows(
        [("Model", "m")], torch_runtime=[("CUDA", "c")], qt_runtime=[("Qt", "q")], session="s"
    )
    labels = [label for label, _ in rows]
    assert labels[labels.index("torch") + 1] == "CUDA"
    assert labels[labels.index("PySide6") + 1] == "Qt"
    assert labels[-6:] == ["Model", *(label for label, _ in folder_rows())]
    assert rows[-1] == ("Session file", "s")


def test_the_text_is_aligned_one_row_a_line():
    text = render([("A", "1"), ("Longer label", "two\nlines")])
    assert text.splitlines() == ["A:            1", "Longer label: two lines"]
