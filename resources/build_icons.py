"""Render the icon's PNG sizes, ``.ico`` and ``.icns`` from ``icons/locdiff-studio.svg``.

    python -m locdiff_resources.build_icons          # (re)write them beside the SVG
    python -m locdiff_resources.build_icons --out D  # into folder D instead

Qt's SVG renderer draws each size from the vector source (small sizes are not scaled-down big
ones); Pillow writes the Windows icon (16 to 256 px) and the macOS icon set. Needs PySide6 and
Pillow, both dependencies of the app.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from locdiff_resources import APP_ID, ICON_SVG, ICONS, PNG_SIZES

ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render(svg: Path, size: int):
    """The SVG drawn at ``size`` x ``size`` as a Pillow RGBA image."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    if QGuiApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        render.app = QGuiApplication([sys.argv[0]])  # kept: QGuiApplication must outlive use
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    import io

    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def build(out: Path = ICONS, svg: Path = ICON_SVG) -> list[Path]:
    """Write every size, the ``.ico`` and the ``.icns`` under ``out``; the files written."""
    written = []
    for size in PNG_SIZES:
        path = out / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        render(svg, size).save(path, optimize=True)
        written.append(path)
    large = render(svg, 1024)
    ico = out / "locdiff-studio.ico"
    large.save(ico, sizes=[(s, s) for s in ICO_SIZES])
    icns = out / "locdiff-studio.icns"
    large.save(icns)
    return [*written, ico, icns]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ICONS, help="folder to write into")
    args = parser.parse_args(argv)
    for path in build(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
