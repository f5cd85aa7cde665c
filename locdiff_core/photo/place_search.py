"""Finding a place by name, offline: "Arezzo", "san jose, costa rica", "Köln" or "koln".

The places are the GeoNames extract that :mod:`locdiff_core.photo.geocode` ships (towns and
cities of 1,000 people or more, with their region and country). A query is a name, optionally
followed by commas and words that must match the region, county, country or country code
("Paris, US" is Paris, Texas). Matching ignores case and accents; whole names rank above names
that start with the query, which rank above names that contain it as a word; within each,
the most populous first.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from locdiff_core.photo.geocode import Place, ReverseGeocoder, shared_geocoder


def fold(text: str) -> str:
    """``text`` lower-cased, without accents, with runs of punctuation and spaces as one space
    ("Saint-Étienne" and "saint etienne" fold alike)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = plain.replace("ß", "ss").replace("ø", "o").replace("ł", "l").replace("đ", "d")
    return re.sub(r"[\W_]+", " ", plain).strip()


@dataclass(frozen=True)
class SearchResult:
    """The places that match a query, best first, and a sentence when none does."""

    places: tuple[Place, ...]
    message: str = ""


class PlaceIndex:
    """The folded names of every place, sorted, for :meth:`search`."""

    def __init__(self, geocoder: ReverseGeocoder | None = None) -> None:
        self.geocoder = geocoder or shared_geocoder()
        records = self.geocoder.records()
        names = [fold(r["city"]) for r in records]
        order = sorted(range(len(names)), key=names.__getitem__)
        self._sorted = [names[i] for i in order]
        self._order = np.array(order, dtype=np.int64)
        self._names = names
        self._population = np.array([r["population"] for r in records], dtype=np.int64)
        countries: dict[str, str] = {}
        self._context = []
        for r in records:
            code = r["country_code"]
            if code not in countries:
                countries[code] = fold(f"{self.geocoder.country_name(code)} {code}")
            region = fold(f"{r.get('state', '')} {r.get('county', '')}")
            self._context.append(f" {region} {countries[code]} ")

    def _prefixed(self, name: str) -> range:
        """Positions in the sorted names of those that start with ``name``."""
        lo = bisect.bisect_left(self._sorted, name)
        hi = bisect.bisect_left(self._sorted, name + "\uffff", lo)
        return range(lo, hi)

    def search(self, query: str, limit: int = 10) -> SearchResult:
        """Up to ``limit`` places matching ``query``."""
        name, *qualifiers = [fold(part) for part in query.split(",")]
        qualifiers = [q for q in qualifiers if q]
        if not name:
            return SearchResult((), "type a place name, e.g. Arezzo or Arezzo, Italy")

        def fits(i: int) -> bool:  # every qualifier is a word (or a word's start) of the context
            return all(f" {q}" in self._context[i] for q in qualifiers)

        ranked: list[tuple[int, int, int]] = []  # (rank, -population, index)
        seen: set[int] = set()
        for pos in self._prefixed(name):
            i = int(self._order[pos])
            seen.add(i)
            if fits(i):
                rank = 0 if self._sorted[pos] == name else 1
                ranked.append((rank, -int(self._population[i]), i))
        if len(ranked) < limit:  # names that hold the query as a later word ("new york" in
            word = f" {name}"  # "east new york"): a scan, only when the prefixes are few
            for i, candidate in enumerate(self._names):
                if word in f" {candidate}" and i not in seen and fits(i):
                    ranked.append((2, -int(self._population[i]), i))
        if not ranked:
            where = f" in {', '.join(qualifiers)}" if qualifiers else ""
            return SearchResult(
                (),
                f"no town or city called {query.split(',')[0].strip()!r}{where} in the offline "
                "place list (places of 1,000 people or more); try another spelling, or set "
                "the coordinates",
            )
        ranked.sort()
        return SearchResult(tuple(self.geocoder.place(i, 0.0) for *_, i in ranked[:limit]))


@functools.lru_cache(maxsize=1)
def shared_index() -> PlaceIndex:
    """A process-wide index over the shared geocoder's places (built once, about a second)."""
    return PlaceIndex()


def search_places(query: str, limit: int = 10) -> SearchResult:
    """:meth:`PlaceIndex.search` on the shared index."""
    return shared_index().search(query, limit)
