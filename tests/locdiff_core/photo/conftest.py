"""Fixtures for the photo tests: the shared EXIF sample set and a private undo journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from photo_samples import SAMPLES


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"test data not found at {SAMPLES.resolve()}")
    return SAMPLES


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path, monkeypatch):
    """Keep the undo journal of every test in its own folder."""
    monkeypatch.setenv("LOCDIFF_STATE_DIR", str(tmp_path / "state"))
