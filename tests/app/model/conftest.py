"""Fixtures for the tests of :mod:`app.model`."""

import pytest


@pytest.fixture
def photos(tmp_path):
    for name in ("a.jpg", "b.JPG", "c.png"):
        (tmp_path / name).write_bytes(b"not read here")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.jpeg").write_bytes(b"x")
    (tmp_path / "sub" / "notes.txt").write_text("not a photo")
    (tmp_path / "sub" / ".hidden.jpg").write_bytes(b"x")
    return tmp_path
