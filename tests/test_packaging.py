"""The wheel's package list is whole: every package folder of the code is listed in
pyproject.toml (the list is explicit because resources/ installs as locdiff_resources)."""

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(config["setuptools"]["packages"])
    found = set(find_packages(str(ROOT), include=["locdiff_core*", "trainer*", "app*"]))
    assert listed - {"locdiff_resources"} == found
    assert config["setuptools"]["package-dir"] == {"locdiff_resources": "resources"}
    assert (ROOT / "resources" / "__init__.py").is_file()
