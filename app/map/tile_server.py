"""The local tile server: offline map packs (``app.map.tile_packs``) served to the map page
over HTTP on 127.0.0.1, so Leaflet and protomaps-leaflet load them as they load online tiles.

One ``ThreadingHTTPServer`` on a free port, in a daemon thread; each registered pack gets a
random id and a URL template ``http://127.0.0.1:PORT/packs/<id>/{z}/{x}/{y}.<ext>``. Only
paths of exactly that shape are answered (400 otherwise, so nothing like ``..`` reaches a
file), only registered packs (404 for others), and a tile the pack lacks is a 404 with an empty
body: Leaflet then leaves the basemap showing, and protomaps-leaflet, which parses any body it
gets, reads an empty vector tile. Every answer allows any origin (the page's ``fetch`` of
vector tiles comes from a ``file://`` page) and is not stored by the browser (the pack already
is on disk; a copy would only crowd the online tiles out of the map's disk cache). Requests are
not logged. Qt-free.

    server = TileServer()
    server.start()
    pack = open_pack("alps.pmtiles")
    url = server.add(pack)  # http://127.0.0.1:PORT/packs/3f9c.../{z}/{x}/{y}.mvt
    ...
    server.remove(pack)
    pack.close()
    server.close()
"""

from __future__ import annotations

import http.server
import logging
import re
import secrets
import sys
import threading
from http import HTTPStatus

from app.map.tile_packs import PackError, TilePack

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_TILE_PATH = re.compile(r"/packs/([0-9a-f]{16})/(\d{1,2})/(\d{1,10})/(\d{1,10})\.([a-z]{3,4})")
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Private-Network": "true",  # Chromium's rule for pages to localhost
}
CACHE_CONTROL = "no-store"
POLL_SECONDS = 0.1  # how soon close() is noticed by the serving loop


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive: the page reuses connections)."""

    protocol_version = "HTTP/1.1"
    server_version = "LocDiffTiles/1"
    timeout = 30  # seconds an idle kept-alive connection holds its thread
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart
    server: _Server

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_OPTIONS(self) -> None:
        self._send(HTTPStatus.NO_CONTENT, b"", "text/plain", body=False)

    def _answer(self, *, body: bool) -> None:
        match = _TILE_PATH.fullmatch(self.path.split("?", 1)[0])
        if match is None:
            self._send(HTTPStatus.BAD_REQUEST, b"not a tile path\n", "text/plain", body=body)
            return
        pack_id, z, x, y, extension = match.groups()
        pack = self.server.packs.get(pack_id)
        if pack is None:
            self._send(HTTPStatus.NOT_FOUND, b"", "text/plain", body=body)
            return
        if extension != pack.extension:
            message = f"this pack's tiles are .{pack.extension}\n".encode()
            self._send(HTTPStatus.BAD_REQUEST, message, "text/plain", body=body)
            return
        try:
            data = pack.tile(int(z), int(x), int(y))
        except PackError as error:
            log.warning("tile server: %s", error)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"", "text/plain", body=body)
            return
        if data is None:
            self._send(HTTPStatus.NOT_FOUND, b"", pack.content_type, body=body)
        else:
            self._send(HTTPStatus.OK, data, pack.content_type, body=body)

    def _send(self, status: HTTPStatus, data: bytes, content_type: str, *, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", CACHE_CONTROL)
        for name, value in _CORS.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per tile on stderr otherwise


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() need not wait for kept-alive connections to hang up

    def __init__(self) -> None:
        super().__init__((HOST, 0), _Handler)
        self.packs: dict[str, TilePack] = {}  # replaced whole, never mutated: no lock to read

    def handle_error(self, request: object, client_address: object) -> None:
        # A page that cancels tiles (zooming away) resets connections; that is not an error.
        error = sys.exc_info()[1]
        level = (
            logging.DEBUG if isinstance(error, ConnectionError | TimeoutError) else logging.WARNING
        )
        log.log(level, "tile server: request from %s failed", client_address, exc_info=True)


class TileServer:
    """Serves registered :class:`TilePack` s on 127.0.0.1; see the module docstring.

    The server does not own the packs: :meth:`remove` and :meth:`close` stop serving them and
    leave closing them to the caller. Every method may be called from any thread."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids: dict[int, str] = {}  # id(pack) -> its id in URLs
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port it listens on; ValueError before :meth:`start`."""
        return self._running().server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Bind a free port and serve from a daemon thread (does nothing when running)."""
        with self._lock:
            if self._server is not None:
                return
            self._server = _Server()
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                args=(POLL_SECONDS,),
                name="tile-server",
                daemon=True,
            )
            self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port; the packs stay open. Safe to call twice."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            self._ids.clear()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def add(self, pack: TilePack) -> str:
        """Serve ``pack``; its Leaflet URL template (``{z}/{x}/{y}.<ext>``). Adding a pack
        twice returns the same template."""
        with self._lock:
            server = self._running()
            pack_id = self._ids.get(id(pack))
            if pack_id is None:
                pack_id = secrets.token_hex(8)  # a new URL per pack: no stale browser tiles
                self._ids[id(pack)] = pack_id
                server.packs = {**server.packs, pack_id: pack}
            base = f"http://{HOST}:{server.server_address[1]}"
        return f"{base}/packs/{pack_id}/{{z}}/{{x}}/{{y}}.{pack.extension}"

    def remove(self, pack: TilePack) -> None:
        """Stop serving ``pack`` (its URLs answer 404); nothing happens for an unknown pack."""
        with self._lock:
            pack_id = self._ids.pop(id(pack), None)
            if pack_id is not None and self._server is not None:
                self._server.packs = {k: v for k, v in self._server.packs.items() if k != pack_id}

    def __enter__(self) -> TileServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _running(self) -> _Server:
        if self._server is None:
            raise ValueError("the tile server is not running: call start() first")
        return self._server
