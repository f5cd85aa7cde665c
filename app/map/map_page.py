"""The map page's assets, request filter and browser profile (the ``MapView``'s web side).

Everything the page loads is local: Leaflet and Leaflet.markercluster from the installed
``XStatic-Leaflet`` and ``XStatic-Leaflet-MarkerCluster`` packages, ``qwebchannel.js`` from Qt's
resources, ``web/`` beside this file (with ``web/vendor/`` for bundles that have no Python
package). The request filter lets the page fetch only those, the tile server's host and the
local map-pack server; the online tiles it has shown are kept in a disk cache
(:func:`map_profile`).
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

from PySide6.QtCore import QCoreApplication, QLockFile, QObject, QUrl
from PySide6.QtWebEngineCore import (
    QWebEnginePage,
    QWebEngineProfile,
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
)

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
OSM_ATTRIBUTION = "&copy; OpenStreetMap contributors"
USER_AGENT = "LocDiffStudio/0.1 (desktop photo geolocation; QtWebEngine)"
TILE_CACHE_MB = 256
_LOCAL_SCHEMES = ("qrc", "data", "blob")


def _xstatic_dir(module: str, package: str) -> Path:
    try:
        pkg = __import__(f"xstatic.pkg.{module}", fromlist=["BASE_DIR"])
    except ImportError:
        raise ValueError(f"the map needs the '{package}' package: pip install {package}") from None
    return Path(pkg.BASE_DIR).resolve()


def leaflet_dir() -> Path:
    """The folder of leaflet.js and leaflet.css in the installed XStatic-Leaflet package."""
    return _xstatic_dir("leaflet", "XStatic-Leaflet")


def markercluster_dir() -> Path:
    """The folder of Leaflet.markercluster's script and styles (XStatic-Leaflet-MarkerCluster)."""
    return _xstatic_dir("leaflet_markercluster", "XStatic-Leaflet-MarkerCluster")


def tile_attribution(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return OSM_ATTRIBUTION if host.endswith("openstreetmap.org") else f"Tiles: {host}"


def page_html() -> str:
    """map.html with the script folders filled in (loaded with ``WEB_DIR`` as its base URL)."""
    template = (WEB_DIR / "map.html").read_text(encoding="utf-8")
    folders = {"@LEAFLET_URL@": leaflet_dir(), "@CLUSTER_URL@": markercluster_dir()}
    for marker, folder in folders.items():
        template = template.replace(marker, QUrl.fromLocalFile(str(folder)).toString())
    return template


class RequestFilter(QWebEngineUrlRequestInterceptor):
    """Lets the page load its own files, Qt's resources, and the tile host; blocks the rest."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.folders = (str(WEB_DIR), str(leaflet_dir()), str(markercluster_dir()))
        self.tile_origin: tuple[str, re.Pattern, int | None] | None = None
        self.pack_origin: tuple[str, int] | None = None  # the local map-pack server
        self.blocked: list[str] = []  # for the log and the tests

    def set_tile_url(self, url: str) -> None:
        if not url:
            self.tile_origin = None
            return
        parts = urlsplit(url)
        # "{s}" in the host is Leaflet's subdomain (a, b, c): any one label matches it.
        host = re.escape(parts.hostname or "").replace(re.escape("{s}"), "[a-z0-9-]+")
        self.tile_origin = (parts.scheme, re.compile(host + r"\Z"), parts.port)

    def set_pack_url(self, url: str) -> None:
        """Allow the map-pack server of ``url`` (only ever on 127.0.0.1); "" allows none."""
        parts = urlsplit(url) if url else None
        local = parts is not None and parts.scheme == "http" and parts.hostname == "127.0.0.1"
        self.pack_origin = (parts.hostname, parts.port) if local else None

    def allows(self, url: QUrl) -> bool:
        scheme = url.scheme()
        if scheme in _LOCAL_SCHEMES:
            return True
        if scheme == "file":
            path = str(Path(url.toLocalFile()).resolve())
            return any(path == f or path.startswith(f + "/") for f in self.folders)
        if scheme == "http" and self.pack_origin == (url.host(), url.port()):
            return True
        if scheme in ("http", "https") and self.tile_origin is not None:
            tile_scheme, tile_host, tile_port = self.tile_origin
            port = url.port() if url.port() != -1 else None
            return scheme == tile_scheme and port == tile_port and bool(tile_host.match(url.host()))
        return False

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:  # noqa: N802 (Qt)
        url = info.requestUrl()
        if not self.allows(url):
            self.blocked.append(url.toString())
            log.info("map page: blocked %s", url.toString())
            info.block(True)


class MapPage(QWebEnginePage):
    """The map page; its console messages go to this module's log (errors as warnings)."""

    def javaScriptConsoleMessage(self, level, message, line, source):  # noqa: N802 (Qt)
        error = level == QWebEnginePage.JavaScriptConsoleMessageLevel.ErrorMessageLevel
        severity = logging.WARNING if error else logging.DEBUG
        log.log(severity, "map page: %s (%s line %s)", message, source, line)


_profile: QWebEngineProfile | None = None
_profile_lock: QLockFile | None = None


def map_profile() -> QWebEngineProfile:
    """The profile of every map page in this process: online tiles are kept in an HTTP disk
    cache (``settings.cache_dir() / "map"``, at most :data:`TILE_CACHE_MB`), so the places seen
    before load at once, also offline, and a tile server is asked again only as its cache
    headers say (what OpenStreetMap's tile policy asks of clients). No cookies are kept.

    Made once, on first use, and owned by the application, so it outlives every page. A second
    instance of the app, finding the cache folder locked, caches in memory only."""
    global _profile, _profile_lock
    if _profile is not None:
        return _profile
    from app.model.settings import cache_dir

    owner = QCoreApplication.instance()
    folder = cache_dir() / "map"
    lock = None
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        lock = QLockFile(str(folder / "in-use.lock"))
        lock.setStaleLockTime(0)  # held for the life of the process: never stale by age
        if not lock.tryLock(0):
            log.info("map tile cache %s is in use by another LocDiff Studio: memory only", folder)
            lock = None
    if lock is None:
        profile = QWebEngineProfile(owner)  # off the record: tiles cached in memory only
    else:
        profile = QWebEngineProfile("locdiff-map", owner)
        profile.setPersistentStoragePath(str(folder / "storage"))
        profile.setCachePath(str(folder / "cache"))
        profile.setHttpCacheType(QWebEngineProfile.HttpCacheType.DiskHttpCache)
        profile.setHttpCacheMaximumSize(TILE_CACHE_MB * 1024 * 1024)
        policy = QWebEngineProfile.PersistentCookiesPolicy.NoPersistentCookies
        profile.setPersistentCookiesPolicy(policy)
    profile.setHttpUserAgent(USER_AGENT)
    _profile, _profile_lock = profile, lock
    return profile
