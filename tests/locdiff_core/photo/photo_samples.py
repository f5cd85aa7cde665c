"""Helpers for the photo tests: where the shared EXIF samples are, writable copies, and
exiftool as an independent reader when it is installed."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from locdiff_core.photo.exiftool import exiftool_path, shared

SAMPLES = Path(__file__).parents[3] / ".." / "shared" / "testdata" / "exif-samples"
HAS_EXIFTOOL = exiftool_path() is not None
needs_exiftool = pytest.mark.skipif(not HAS_EXIFTOOL, reason="exiftool is not installed")


def sample_files() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(
        p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix.lower() in (".jpg", ".tiff")
    )


def sample_id(path: Path) -> str:
    return str(path.relative_to(SAMPLES))


def writable_copy(src: Path, folder: Path) -> Path:
    """A copy of a sample that tests may change (the samples themselves are read-only)."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    shutil.copyfile(src, dst)
    dst.chmod(dst.stat().st_mode | stat.S_IWUSR)
    return dst


def exiftool_tags(path: Path) -> dict:
    """Every tag exiftool sees, numerically, keyed by ``Group:Tag`` (binary values included)."""
    out = shared().execute("-j", "-n", "-G1", "-a", "-b", str(path))
    return json.loads(out)[0]
