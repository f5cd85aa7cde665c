"""The vendored browser bundles: present, as the README's table says, and shipped as package
data."""

import hashlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
VENDOR = ROOT / "app" / "map" / "web" / "vendor"


def test_protomaps_leaflet_matches_its_readme():
    bundle = (VENDOR / "protomaps-leaflet.js").read_bytes()
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"\| file sha256 \| `([0-9a-f]{64})` \|", readme)
    assert recorded is not None
    assert hashlib.sha256(bundle).hexdigest() == recorded.group(1)
    assert bundle.startswith(b'"use strict";var protomapsL=(()=>{')  # the global the page uses
    assert b"leafletLayer" in bundle
    licence = (VENDOR / "protomaps-leaflet.LICENSE").read_text(encoding="utf-8")
    assert "Protomaps LLC" in licence and "Redistribution and use" in licence  # BSD-3-Clause
    assert "fflate" in (VENDOR / "protomaps-leaflet.THIRD-PARTY").read_text(encoding="utf-8")


def test_the_bundle_loads_nothing_from_the_network_by_itself():
    bundle = (VENDOR / "protomaps-leaflet.js").read_text(encoding="utf-8")
    urls = set(re.findall(r"https?://[^\s\"'`)<>]+", bundle))
    # attribution links, the SVG namespace and a placeholder base for parsing relative URLs
    allowed = {
        "https://protomaps.com",
        "https://openstreetmap.org/copyright",
        "http://www.w3.org/2000/svg",
        "http://example.com",
    }
    assert urls <= allowed


def test_vendor_files_are_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "map/web/vendor/*" in pyproject["tool"]["setuptools"]["package-data"]["app"]
