"""LocDiff Studio's files that are not code: the icon (an SVG source, the PNG sizes desktops
use, a Windows ``.ico`` and a macOS ``.icns``), the freedesktop ``.desktop`` entry and the
AppStream metainfo. Installed with the wheel as the package ``locdiff_resources``; Qt-free.

The PNG, ``.ico`` and ``.icns`` files are made from the SVG by ``build_icons.py`` (Qt's SVG
renderer and Pillow): ``python -m locdiff_resources.build_icons``.
"""

from __future__ import annotations

from pathlib import Path

APP_ID = "io.github.locdiff.LocDiffStudio"  # reverse-DNS: the desktop entry's and AppStream's id
FOLDER = Path(__file__).resolve().parent
ICONS = FOLDER / "icons"
ICON_SVG = ICONS / "locdiff-studio.svg"
ICON_ICO = ICONS / "locdiff-studio.ico"
ICON_ICNS = ICONS / "locdiff-studio.icns"
PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)  # what freedesktop's hicolor theme uses
DESKTOP_ENTRY = FOLDER / "linux" / f"{APP_ID}.desktop"
METAINFO = FOLDER / "linux" / f"{APP_ID}.metainfo.xml"


def icon_png(size: int) -> Path:
    """The icon's PNG of ``size`` pixels square (one of :data:`PNG_SIZES`)."""
    if size not in PNG_SIZES:
        raise ValueError(f"the icon comes in {', '.join(map(str, PNG_SIZES))} pixels, not {size}")
    return ICONS / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
