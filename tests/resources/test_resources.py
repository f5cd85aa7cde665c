"""The files that are not code: the icon renders and its PNGs are the sizes they claim, the
desktop entry and the metainfo pass their validators, and all of it is in the built wheel."""

import shutil
import subprocess
import sys
import zipfile

import pytest
from PIL import Image

import locdiff_resources as res


@pytest.mark.parametrize("size", res.PNG_SIZES)
def test_each_png_is_the_size_it_claims_and_not_empty(size):
    with Image.open(res.icon_png(size)) as image:
        assert image.format == "PNG" and image.size == (size, size) and image.mode == "RGBA"
        alpha = image.getchannel("A")
        assert alpha.getextrema() == (0, 255)  # transparent corners, an opaque globe
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 8


def test_windows_and_mac_icons_hold_their_sizes():
    with Image.open(res.ICON_ICO) as ico:
        assert ico.format == "ICO"
        assert {16, 32, 48, 256} <= {w for w, _ in ico.info["sizes"]}
    with Image.open(res.ICON_ICNS) as icns:
        assert icns.format == "ICNS" and icns.size == (1024, 1024)
    with pytest.raises(ValueError, match="not 20"):
        res.icon_png(20)


def test_the_icons_are_made_from_the_svg(tmp_path, qapp):
    from locdiff_resources import build_icons

    written = build_icons.build(tmp_path)
    assert len(written) == len(res.PNG_SIZES) + 2
    for size in (16, 256):
        made = Image.open(tmp_path / "hicolor" / f"{size}x{size}" / "apps" / f"{res.APP_ID}.png")
        shipped = Image.open(res.icon_png(size))
        assert made.size == shipped.size
        # the same drawing (a re-render may differ by antialiasing only)
        diff = [abs(a - b) for a, b in zip(made.tobytes(), shipped.tobytes(), strict=True)]
        assert sum(diff) / len(diff) < 2.0


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return path


def test_desktop_entry_is_valid():
    done = subprocess.run(
        [_tool("desktop-file-validate"), str(res.DESKTOP_ENTRY)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = res.DESKTOP_ENTRY.read_text(encoding="utf-8")
    for mime in ("image/jpeg", "image/heic", "image/tiff", "image/png", "image/webp",
                 "inode/directory"):  # fmt: skip
        assert mime in text
    assert f"Icon={res.APP_ID}" in text and "Exec=locdiff-app %F" in text


def test_metainfo_is_valid():
    done = subprocess.run(
        [_tool("appstreamcli"), "validate", "--no-net", str(res.METAINFO)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = res.METAINFO.read_text(encoding="utf-8")
    assert f"<id>{res.APP_ID}</id>" in text and f"{res.APP_ID}.desktop" in text
    for name in ("app-no-model.png", "app-predicted.png", "app-offline-pack.png"):
        assert f"docs/images/{name}" in text  # the README's screenshots
        assert (res.FOLDER.parent / "docs" / "images" / name).is_file()


@pytest.mark.slow
def test_the_wheel_carries_the_resources(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(res.FOLDER.parent)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("locdiff-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in [res.ICON_SVG, res.ICON_ICO, res.ICON_ICNS, res.DESKTOP_ENTRY, res.METAINFO,
                 *(res.icon_png(s) for s in res.PNG_SIZES)]:  # fmt: skip
        assert "locdiff_resources/" + path.relative_to(res.FOLDER).as_posix() in names
    assert "app/map/web/vendor/protomaps-leaflet.js" in names
    assert "locdiff_resources/__init__.py" in names
