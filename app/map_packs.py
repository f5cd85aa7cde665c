"""Offline map packs in the window: *File > Open map pack* and *Close map pack*.

A pack (``.mbtiles`` or ``.pmtiles``, opened by ``app.map.tile_packs``) is served on 127.0.0.1
by one ``app.map.tile_server.TileServer`` and shown as the map's basemap; the online tiles stand
aside while it is open. The pack's path is kept in the settings (``map_pack``), so it is open
again on the next start; a pack that can no longer be opened then is said once in the status
bar and forgotten. Opening a file that is not a usable pack says why and changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging

from PySide6.QtCore import QObject

from app.map.tile_packs import PackError, TilePack, open_pack
from app.map.tile_server import TileServer

log = logging.getLogger(__name__)


def pack_spec(pack: TilePack, url: str) -> dict:
    """What the map page needs to draw ``pack`` from ``url`` (``MapView.set_pack``)."""
    south, west, north, east = pack.bounds
    return {
        "name": pack.name,
        "kind": str(pack.kind),
        "url": url,
        "attribution": pack.attribution or f"Map pack: {pack.path.name}",
        "minZoom": int(pack.min_zoom),
        "maxZoom": int(pack.max_zoom),
        "bounds": [[south, west], [north, east]],
    }


def describe(pack: TilePack) -> str:
    """``alps.pmtiles: vector map, zoom 0-14``."""
    return f"{pack.path.name}: {pack.kind} map, zoom {pack.min_zoom}-{pack.max_zoom}"


class MapPacks(QObject):
    """The window's map pack; see the module docstring."""

    def __init__(self, window, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.server = TileServer()
        self.pack: TilePack | None = None
        if window.settings.map_pack:
            self._reopen(window.settings.map_pack)

    def _reopen(self, path: str) -> None:
        try:
            self.show(path)
        except PackError as exc:
            self.window.notify(f"The map pack of the last session is not used: {exc}")
            self._remember("")

    def open_map_pack(self) -> None:
        path = self.window.prompts.open_map_pack()
        if not path:
            return
        try:
            self.show(path)
        except PackError as exc:
            self.window.prompts.error("Open map pack", str(exc))
            return
        self._remember(str(self.pack.path))
        self.window.notify(f"Basemap: {describe(self.pack)}")

    def close_map_pack(self) -> None:
        if self.pack is None:
            return
        name = self.pack.path.name
        self._drop()
        self.window.map.set_pack(None)
        self._remember("")
        self.window.notify(f"Closed the map pack {name}")

    def show(self, path: str) -> TilePack:
        """Open ``path`` and make it the basemap (the pack before it is closed); PackError
        when it cannot be used, leaving the map as it was."""
        pack = open_pack(path)
        try:
            self.server.start()
            url = self.server.add(pack)
        except OSError as exc:  # no port to serve it on
            pack.close()
            raise PackError(f"{path}: the map pack cannot be served locally ({exc})") from None
        self._drop()
        self.pack = pack
        self.window.map.set_pack(pack_spec(pack, url))
        return pack

    def _drop(self) -> None:
        if self.pack is not None:
            self.server.remove(self.pack)
            self.pack.close()
            self.pack = None

    def _remember(self, path: str) -> None:
        settings = self.window.settings
        if settings.map_pack != path:
            self.window.apply_settings(dataclasses.replace(settings, map_pack=path))

    def shutdown(self) -> None:
        """Stop serving and close the pack (the window is closing)."""
        self._drop()
        self.server.close()
