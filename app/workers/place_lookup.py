"""Finding places by name, offline, in the background (for the map's search box).

The search is :func:`locdiff_core.photo.place_search.search_places`; its index is built on the
first search (about two seconds, holding the GIL), so :meth:`PlaceLookup.warm_up` can build it
while the window opens. Searches run one at a time on the lookup's own thread; only the answer
to the latest one is delivered, and a search that a newer one overtook before it started is
not run at all. An exception becomes the message ``"place search failed: ..."``.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass

from PySide6.QtCore import Signal

from app.workers.loaders import _Job, _Loader
from locdiff_core.photo.geocode import Place
from locdiff_core.photo.place_search import search_places, shared_index

RESULT_LIMIT = 10  # places per answer
STOP_WAIT_MS = 30_000


@dataclass(frozen=True)
class PlaceHit:
    """One place found: ``label`` is ``"Arezzo, Tuscany, Italy"``, ``lat``/``lon`` degrees."""

    label: str
    lat: float
    lon: float
    population: int

    @classmethod
    def from_place(cls, place: Place) -> PlaceHit:
        return cls(place.label(), float(place.lat), float(place.lon), int(place.population))


def find_places(query: str, limit: int = RESULT_LIMIT) -> tuple[list[PlaceHit], str]:
    """The places matching ``query`` and the core's message (empty when some match); never
    raises: a failure is the message ``"place search failed: ..."``."""
    try:
        result = search_places(query, limit)
    except (ValueError, OSError) as exc:  # the place data is missing or unreadable
        return [], f"place search failed: {exc}"
    except Exception as exc:
        return [], f"place search failed: {type(exc).__name__}: {exc}"
    return [PlaceHit.from_place(p) for p in result.places], result.message


class PlaceLookup(_Loader):
    """Place searches on one background thread. :meth:`search` returns a request number;
    :attr:`found` answers the latest request (older answers are dropped)."""

    found = Signal(int, str, list, str)  # request, query, list[PlaceHit], message
    _answer = Signal(int, str, object, str)  # from the pool thread; None: not run
    _warmed = Signal(int)  # warm-up token

    def __init__(self, parent=None) -> None:
        super().__init__(threads=1, parent=parent)
        self._latest = 0  # written in the window's thread, read by the pool's
        self._pending: set[int] = set()  # jobs not yet reported (the window's thread only)
        self._warm_ups = itertools.count(-1, -1)  # their numbers, apart from the requests'
        self._answer.connect(self._deliver)
        self._warmed.connect(self._done)

    @property
    def latest(self) -> int:
        """The number of the latest request (0 before the first)."""
        return self._latest

    @property
    def idle(self) -> bool:
        """No search or warm-up is running or queued, and every answer has been handled."""
        return not self._pending

    def warm_up(self) -> None:
        """Build the search index now, in the background, so the first search is quick."""
        if self.stopped:
            return
        token = next(self._warm_ups)
        self._pending.add(token)
        self.pool.start(_Job(lambda: self._build_index(token)))

    def search(self, query: str) -> int:
        """Search for ``query`` ("Arezzo" or "Arezzo, Italy"); returns the request's number
        (0 once stopped: nothing is searched)."""
        if self.stopped:
            return 0
        self._latest += 1
        request = self._latest
        self._pending.add(request)
        self.pool.start(_Job(lambda: self._run(request, query)))
        return request

    def stop(self) -> None:
        """Drop the queued searches and wait for the running one (the window is closing)."""
        super().stop()
        self.pool.clear()
        self.pool.waitForDone(STOP_WAIT_MS)
        self._pending.clear()  # the cleared jobs will never report

    def _build_index(self, token: int) -> None:
        with contextlib.suppress(Exception):  # the next search reports the same failure
            shared_index()
        self._warmed.emit(token)

    def _run(self, request: int, query: str) -> None:
        if request != self._latest or self.stopped:  # overtaken while queued
            self._answer.emit(request, query, None, "")
            return
        hits, message = find_places(query)
        self._answer.emit(request, query, hits, message)

    def _deliver(self, request: int, query: str, hits: list[PlaceHit] | None, message: str) -> None:
        self._done(request)
        if hits is not None and request == self._latest and not self.stopped:
            self.found.emit(request, query, hits, message)

    def _done(self, token: int) -> None:
        self._pending.discard(token)
